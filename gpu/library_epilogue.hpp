// How sparq's epilogue y = act(x W^T + bias) + residual splits between a library matmul
// (cuBLASLt, cuSPARSELt) and sparq's own finishing pass. Both libraries compute
// D = epilogue(alpha * A B + beta * C + bias) with ReLU as the one activation they offer for
// 16-bit outputs, so:
// - the bias always goes into the library (whatever follows it is applied later, in order);
// - ReLU goes in with it; GELU and SiLU stay in sparq's pass (the libraries have no exact-erf GELU
//   and no SiLU, and sparq's definitions are the contract);
// - the residual enters as C with beta = 1 only without an activation, since the libraries add C
//   before activating (relu(a + r) is not relu(a) + r), and only where C can share D's layout.
#pragma once

#include <string>

#include "sparq/types.hpp"

namespace sparq::gpu {

struct LibraryEpilogue {
  bool bias = false;           // added by the library, from a bias vector in the output type
  bool relu = false;           // applied by the library after the bias
  bool residual_as_c = false;  // the library may take the residual as C (beta = 1)

  // What is left for sparq's pass after the library.
  Activation remaining(Activation act) const { return relu ? Activation::none : act; }
  // "+bias+relu" and the like, for kernel names.
  std::string suffix() const { return std::string(bias ? "+bias" : "") + (relu ? "+relu" : ""); }
};

inline LibraryEpilogue library_epilogue(bool has_bias, Activation act) {
  return {
      .bias = has_bias, .relu = act == Activation::relu, .residual_as_c = act == Activation::none};
}

}  // namespace sparq::gpu
