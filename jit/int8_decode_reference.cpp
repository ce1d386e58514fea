// Portable C++ variant of the int8 decode kernel, the fallback on CPUs without AVX2. Same
// contract, layout and rounding as the JIT variant.
#include <cmath>
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
    const int64_t elem = key().int8_output ? 1 : 4;
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
          float v =
              std::fma(static_cast<float>(acc[t][r]) * a.x_scale[t], a.w_scale[row], a.bias[row]);
          v = sparse::activate(v, key().activation);
          if (key().operand != Operand::none) {
            float res;
            std::memcpy(
                &res,
                reinterpret_cast<const uint8_t*>(a.residual) + t * a.residual_stride + 4 * row, 4);
            v = combine(key().operand, v, res);
          }
          uint8_t* out = static_cast<uint8_t*>(a.y) + t * a.y_stride + row * elem;
          if (key().int8_output)
            *reinterpret_cast<int8_t*>(out) = sparse::requantize(v, a.inv_y_scale);
          else
            std::memcpy(out, &v, 4);
        }
    }
  }
};

}  // namespace

std::unique_ptr<Int8DecodeKernel> make_int8_decode_reference(const DecodeKernelKey& key) {
  return std::make_unique<ReferenceDecodeKernel>(key);
}

}  // namespace sparq::jit
