// Portable C++ variant of the int8 decode kernel, the fallback on CPUs without AVX2. Same
// contract, layout and rounding as the JIT variant.
#include <cstring>

#include "jit/int8_decode_kernel.hpp"
#include "sparse/int8_decode_pack.hpp"
#include "sparse/reference.hpp"

namespace sparq::jit {
namespace {

class ReferenceDecodeKernel final : public Int8DecodeKernel {
 public:
  explicit ReferenceDecodeKernel(const DecodeKernelKey& key) : Int8DecodeKernel(key) {}

  void run(const DecodeArgs& a) const override {
    constexpr int kRows = sparse::kDecodeRows;
    const PostOpList post_ops = key().post_ops();
    const int64_t elem = output_bytes(post_ops.output());
    for (const int64_t* g = a.group_begin; g != a.group_end; ++g) {
      const int64_t local = g - a.group_begin;
      int32_t acc[sparse::kDecodeMaxTokens][kRows] = {};
      for (int64_t e = g[0]; e < g[1]; ++e) {
        const uint8_t* entry = a.entries + e * sparse::kDecodeEntryBytes;
        for (int j = 0; j < 2; ++j) {
          uint16_t c;
          std::memcpy(&c, entry + 2 * j, 2);
          for (int t = 0; t < key().tokens; ++t) {
            int16_t x;
            std::memcpy(&x, reinterpret_cast<const uint8_t*>(a.x) + t * a.x_stride + 2 * c, 2);
            for (int r = 0; r < kRows; ++r)
              acc[t][r] += int32_t{x} * static_cast<int8_t>(entry[4 + 2 * r + j]);
          }
        }
      }
      for (int t = 0; t < key().tokens; ++t)
        for (int r = 0; r < kRows; ++r) {
          const int64_t row = local * kRows + r;
          PostOpInputs in{0, a.x_scale[t], a.w_scale[row], a.bias[row], 0.0f};
          if (post_ops.has(PostOpKind::binary))
            std::memcpy(
                &in.operand,
                reinterpret_cast<const uint8_t*>(a.residual) + t * a.residual_stride + 4 * row, 4);
          store_post_op(post_ops.output(), apply_post_ops(post_ops, acc[t][r], in),
                        static_cast<uint8_t*>(a.y) + t * a.y_stride + row * elem, a.inv_y_scale);
        }
    }
  }
};

}  // namespace

std::unique_ptr<Int8DecodeKernel> make_int8_decode_reference(const DecodeKernelKey& key) {
  return std::make_unique<ReferenceDecodeKernel>(key);
}

}  // namespace sparq::jit
