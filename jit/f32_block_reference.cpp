// Portable C++ variant of the f32 tile kernels (4x1 and 2:4 layouts), the fallback on CPUs
// without AVX2/FMA. Same contract and the same layouts as the JIT variants.
#include <cstring>

#include "jit/f32_block_kernel.hpp"
#include "sparse/f32_block_pack.hpp"
#include "sparse/f32_nm_pack.hpp"
#include "sparse/reference.hpp"

namespace sparq::jit {
namespace {

class ReferenceKernel final : public F32BlockKernel {
  static constexpr int kTokens = 16;

 public:
  explicit ReferenceKernel(const F32KernelKey& key) : F32BlockKernel(key) {}
  int tile_tokens() const override { return kTokens; }

  static void accumulate_4x1(const BlockTileArgs& a, const int64_t* g, float (&acc)[4][kTokens]) {
    for (int64_t e = g[0]; e < g[1]; ++e) {
      const uint8_t* entry = a.entries + e * sparse::kF32EntryBytes;
      uint32_t offset;
      std::memcpy(&offset, entry, 4);
      float column[kTokens], w[4];
      std::memcpy(column, a.x + offset, sizeof column);
      std::memcpy(w, entry + 4, sizeof w);
      for (int r = 0; r < 4; ++r)
        for (int s = 0; s < kTokens; ++s) acc[r][s] += w[r] * column[s];
    }
  }

  static void accumulate_2of4(const BlockTileArgs& a, const int64_t* g, float (&acc)[4][kTokens]) {
    for (int64_t e = g[0]; e < g[1]; ++e) {
      const uint8_t* entry = a.entries + e * sparse::kF32NmEntryBytes;
      const uint8_t* block = a.x + (e - g[0]) * 4 * kTokens * sizeof(float);
      for (int r = 0; r < 4; ++r)
        for (int j = 0; j < 2; ++j) {
          float column[kTokens], w;
          std::memcpy(column, block + 4 * entry[2 * r + j], sizeof column);
          std::memcpy(&w, entry + 8 + 8 * r + 4 * j, 4);
          for (int s = 0; s < kTokens; ++s) acc[r][s] += w * column[s];
        }
    }
  }

  void run(const BlockTileArgs& a) const override {
    const PostOpList post_ops = key().post_ops();
    for (const int64_t* g = a.group_begin; g != a.group_end; ++g) {
      const int64_t local = g - a.group_begin;  // group index within this call
      float acc[4][kTokens] = {};
      if (key().layout == F32Layout::n2_m4)
        accumulate_2of4(a, g, acc);
      else
        accumulate_4x1(a, g, acc);
      for (int s = 0; s < kTokens; ++s) {
        const int t = sparse::f32_slice_token(kTokens, s);
        for (int r = 0; r < 4; ++r) {
          const int64_t row = local * 4 + r;
          PostOpInputs in;
          in.bias = a.bias[row];
          if (post_ops.has(PostOpKind::binary))
            std::memcpy(&in.operand,
                        static_cast<const uint8_t*>(static_cast<const void*>(a.residual)) +
                            t * a.residual_stride + 4 * row,
                        4);
          const float v = apply_post_ops(post_ops, acc[r][s], in);
          // Full tiles of fp32: the tile loop converts bf16 output (see BlockTileKernel).
          store_post_op(TileOutput::f32, v, static_cast<uint8_t*>(a.y) + t * a.y_stride + 4 * row,
                        a.inv_y_scale);
        }
      }
    }
  }
};

}  // namespace

std::unique_ptr<F32BlockKernel> make_f32_kernel_reference(const F32KernelKey& key) {
  return std::make_unique<ReferenceKernel>(key);
}

}  // namespace sparq::jit
