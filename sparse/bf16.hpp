// bfloat16 conversion: the upper 16 bits of an IEEE fp32, rounded to nearest even.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace sparq::sparse {

uint16_t to_bf16(float value);
float from_bf16(uint16_t value);
std::vector<uint16_t> to_bf16(std::span<const float> values);

}  // namespace sparq::sparse
