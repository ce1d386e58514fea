// Portable C++ variant of the int8 4x1 block-sparse tile kernel (pairs_i16 layout), the
// fallback on CPUs without AVX2. Same contract and the same rounding as the JIT variants.
#include <algorithm>
#include <cstring>

#include "jit/int8_block_kernel.hpp"
#include "sparse/reference.hpp"

namespace sparq::jit {
namespace {

class ReferenceKernel final : public Int8BlockKernel {
 public:
  explicit ReferenceKernel(const Int8KernelKey& key) : Int8BlockKernel(key) {}
  int tile_tokens() const override { return 16; }

  void run(const BlockTileArgs& a) const override {
    const auto layout = sparse::Int8Layout::pairs_i16;
    const int bytes = sparse::entry_bytes(layout);
    const PostOpList post_ops = key().post_ops();
    // Full tiles of fp32 or int8: the tile loop converts bf16 output (see BlockTileKernel).
    const TileOutput output = key().int8_output ? TileOutput::s8 : TileOutput::f32;
    const int64_t elem = output_bytes(output);
    for (const int64_t* g = a.group_begin; g != a.group_end; ++g) {
      const int64_t local = g - a.group_begin;  // group index within this call
      int32_t acc[4][16] = {};
      for (int64_t e = g[0]; e < g[1]; ++e) {
        const uint8_t* entry = a.entries + e * bytes;
        for (int j = 0; j < 2; ++j) {
          uint32_t offset;
          std::memcpy(&offset, entry + 4 * j, 4);
          const uint8_t* column = a.x + offset;
          for (int r = 0; r < 4; ++r) {
            int16_t w;
            std::memcpy(&w, entry + 8 + 4 * r + 2 * j, 2);
            for (int t = 0; t < 16; ++t) {
              int16_t x;
              std::memcpy(&x, column + 2 * t, 2);
              acc[r][t] += int32_t{x} * int32_t{w};
            }
          }
        }
      }
      for (int slot = 0; slot < 16; ++slot) {
        const int t = sparse::chunk_token(layout, slot);  // 0..15 within the slice
        const float xs = a.x_scale[slot];
        for (int r = 0; r < 4; ++r) {
          const int64_t row = local * 4 + r;
          PostOpInputs in{0, xs, a.w_scale[row], a.bias[row], 0.0f};
          if (post_ops.has(PostOpKind::binary))
            std::memcpy(&in.operand,
                        static_cast<const uint8_t*>(static_cast<const void*>(a.residual)) +
                            t * a.residual_stride + 4 * row,
                        4);
          store_post_op(output, apply_post_ops(post_ops, acc[r][t], in),
                        static_cast<uint8_t*>(a.y) + t * a.y_stride + row * elem, a.inv_y_scale);
        }
      }
    }
  }
};

}  // namespace

std::unique_ptr<Int8BlockKernel> make_int8_kernel_reference(const Int8KernelKey& key) {
  return std::make_unique<ReferenceKernel>(key);
}

}  // namespace sparq::jit
