#include "src/linear_kernel.hpp"

#include "sparq/error.hpp"

namespace sparq {

// The entries a kernel does not have: a layer routes each call to a kernel that has it, so
// reaching one of these is a bug in the routing, reported rather than run.
void LinearKernel::run(const float*, int64_t, void*, const float*, bool) const {
  throw NotSupported(name() + " runs int8 layers: quantize the input first");
}

void LinearKernel::quantize(const float*, int64_t, QuantizedInput::Impl&) const {
  throw InvalidArgument(name() + " runs fp32/bf16 layers: it takes no QuantizedInput");
}

bool LinearKernel::reads(const QuantizedInput::Impl&) const { return false; }

void LinearKernel::run(const QuantizedInput::Impl&, void*, float, const float*, bool) const {
  throw InvalidArgument(name() + " runs fp32/bf16 layers: it takes no QuantizedInput");
}

}  // namespace sparq
