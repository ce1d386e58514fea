// Portable C++ variant of the int8 4x1 block-sparse tile kernel (pairs_i16 layout), the
// fallback on CPUs without AVX2. Same contract and the same rounding as the JIT variants.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "jit/int8_block_kernel.hpp"
#include "sparse/reference.hpp"

namespace sparq::jit {
namespace {

class ReferenceKernel final : public Int8BlockKernel {
 public:
  explicit ReferenceKernel(const Int8KernelKey& key) : Int8BlockKernel(key) {}
  int tile_tokens() const override { return 16; }

  void run(const Int8TileArgs& a) const override {
    const auto layout = sparse::Int8Layout::pairs_i16;
    for (int64_t step = 0; step < a.n_steps; ++step) {
      int32_t acc[4][16] = {};
      const uint8_t* entry = a.entries;
      for (int64_t e = 0; e < a.n_entries; ++e, entry += sparse::entry_bytes(layout)) {
        for (int j = 0; j < 2; ++j) {
          uint32_t offset;
          std::memcpy(&offset, entry + 4 * j, 4);
          const uint8_t* column = a.x + offset + step * 16 * 2;
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
        const int t = sparse::chunk_token(layout, slot);  // 0..15 within the step
        const float xs = a.x_scale[step * 16 + slot];
        for (int r = 0; r < 4; ++r) {
          float v = std::fma(static_cast<float>(acc[r][t]) * xs, a.w_scale[r], a.bias[r]);
          v = sparse::activate(v, key().activation);
          const int64_t token = step * 16 + t;
          if (key().residual)
            v += *reinterpret_cast<const float*>(reinterpret_cast<const uint8_t*>(a.residual) +
                                                 token * a.residual_stride + 4 * r);
          uint8_t* out = static_cast<uint8_t*>(a.y) + token * a.y_stride;
          if (key().int8_output)
            reinterpret_cast<int8_t*>(out)[r] = sparse::requantize(v, a.inv_y_scale);
          else
            reinterpret_cast<float*>(out)[r] = v;
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
