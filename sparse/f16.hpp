// IEEE half precision (binary16) conversion: exact widening (subnormals, infinities, NaN) and
// narrowing rounded to nearest even (overflow to infinity, NaN kept a quiet NaN).
#pragma once

#include <cstdint>

namespace sparq::sparse {

float from_f16(uint16_t value);
uint16_t to_f16(float value);

}  // namespace sparq::sparse
