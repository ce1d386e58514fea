#include "src/f32_activation_layout.hpp"

#include "jit/f32_block_kernel.hpp"
#include "sparse/bf16_block_pack.hpp"
#include "sparse/f32_block_pack.hpp"

namespace sparq {

void layout_f32_activations(const float* x, int64_t tokens, int64_t in, int slice_tokens,
                            bool round_to_bf16, float* dst) {
  if (slice_tokens % 8 == 0 && jit::best_float_isa() >= jit::Isa::avx2)
    detail::layout_f32_activations_avx2(x, tokens, in, slice_tokens, round_to_bf16, dst);
  else
    sparse::layout_f32_activations(x, tokens, in, slice_tokens, round_to_bf16, dst);
}

void layout_bf16_activations(const float* x, int64_t tokens, int64_t in, uint16_t* dst) {
  if (jit::best_float_isa() >= jit::Isa::avx512)
    detail::layout_bf16_activations_avx512(x, tokens, in, dst);
  else if (jit::best_float_isa() >= jit::Isa::avx2)
    detail::layout_bf16_activations_avx2(x, tokens, in, dst);
  else
    sparse::layout_bf16_activations(x, tokens, in, dst);
}

}  // namespace sparq
