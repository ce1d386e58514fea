#include "jit/f32_decode_kernel.hpp"

#include <xbyak/xbyak.h>

#include <cmath>
#include <cstring>

#include "jit/kernel_cache.hpp"
#include "sparq/error.hpp"
#include "sparse/bf16.hpp"
#include "sparse/f32_decode_pack.hpp"
#include "sparse/reference.hpp"

namespace sparq::jit {

std::string F32DecodeKernel::name() const {
  const char* prefix = key_.isa == Isa::reference ? "cpp:" : "jit:";
  return std::string(prefix) + (key_.bf16 ? "bf16" : "f32") +
         (key_.two_of_four ? "-2:4-decode:" : "-16x1-decode:") + isa_name(key_.isa);
}

namespace {

// The portable twin: same layout, same order of the sums per row (column by column).
class ReferenceF32Decode final : public F32DecodeKernel {
 public:
  explicit ReferenceF32Decode(const F32DecodeKey& key) : F32DecodeKernel(key) {}

  // 2:4: per block of 4 columns, each row's two kept values (value j, then j + 1).
  void accumulate_2of4(const F32DecodeArgs& a, const int64_t* g,
                       float (&acc)[4][sparse::kF32DecodeRows]) const {
    constexpr int kRows = sparse::kF32DecodeRows;
    const int value_bytes = key().bf16 ? 2 : 4, bytes = 2 * kRows * value_bytes + kRows;
    for (int64_t e = g[0]; e < g[1]; ++e) {
      const uint8_t* entry = a.entries + e * bytes;
      const int64_t block = e - g[0];
      for (int r = 0; r < kRows; ++r)
        for (int j = 0; j < 2; ++j) {
          const uint8_t* slot = entry + (j * kRows + r) * value_bytes;
          float w;
          if (key().bf16) {
            uint16_t h;
            std::memcpy(&h, slot, 2);
            w = sparse::from_bf16(h);
          } else {
            std::memcpy(&w, slot, 4);
          }
          const int64_t c = 4 * block + (entry[2 * kRows * value_bytes + r] >> (2 * j) & 3);
          for (int t = 0; t < key().tokens; ++t) {
            float x;
            std::memcpy(&x, reinterpret_cast<const uint8_t*>(a.x) + t * a.x_stride + 4 * c, 4);
            acc[t][r] = std::fma(w, x, acc[t][r]);
          }
        }
    }
  }

  void run(const F32DecodeArgs& a) const override {
    constexpr int kRows = sparse::kF32DecodeRows;
    const int bytes = key().bf16 ? 36 : 68;
    for (const int64_t* g = a.group_begin; g != a.group_end; ++g) {
      const int64_t local = g - a.group_begin;
      float acc[4][kRows] = {};
      if (key().two_of_four) accumulate_2of4(a, g, acc);
      for (int64_t e = g[0]; e < g[1] && !key().two_of_four; ++e) {
        const uint8_t* entry = a.entries + e * bytes;
        uint32_t c;
        std::memcpy(&c, entry, 4);
        for (int r = 0; r < kRows; ++r) {
          float w;
          if (key().bf16) {
            uint16_t h;
            std::memcpy(&h, entry + 4 + 2 * r, 2);
            w = sparse::from_bf16(h);
          } else {
            std::memcpy(&w, entry + 4 + 4 * r, 4);
          }
          for (int t = 0; t < key().tokens; ++t) {
            float x;
            std::memcpy(&x, reinterpret_cast<const uint8_t*>(a.x) + t * a.x_stride + 4 * c, 4);
            acc[t][r] = std::fma(w, x, acc[t][r]);
          }
        }
      }
      const PostOpList post_ops = key().post_ops();
      for (int t = 0; t < key().tokens; ++t)
        for (int r = 0; r < kRows; ++r) {
          const int64_t row = local * kRows + r;
          PostOpInputs in;
          in.bias = a.bias[row];
          if (post_ops.has(PostOpKind::binary))
            std::memcpy(
                &in.operand,
                reinterpret_cast<const uint8_t*>(a.residual) + t * a.residual_stride + 4 * row, 4);
          store_post_op(post_ops.output(), apply_post_ops(post_ops, acc[t][r], in),
                        reinterpret_cast<uint8_t*>(a.y) + t * a.y_stride + 4 * row, 0.0f);
        }
    }
  }
};

}  // namespace

std::unique_ptr<F32DecodeKernel> make_f32_decode_reference(const F32DecodeKey& key) {
  return std::make_unique<ReferenceF32Decode>(key);
}

std::shared_ptr<const F32DecodeKernel> f32_decode_kernel(const F32DecodeKey& requested) {
  F32DecodeKey key = requested;
  if (key.isa > Isa::avx512) key.isa = Isa::avx512;  // the float kernels need no VNNI
  if (!can_run(key.isa))
    throw NotSupported(std::string("f32 decode kernel for ") + isa_name(key.isa) +
                       " requested, but this CPU lacks it");
  if (key.two_of_four && key.isa == Isa::avx2)
    throw NotSupported("the f32 2:4 decode kernel has no avx2 variant (avx512 or reference)");
  if (key.tokens < 1 || key.tokens > 4)
    throw InvalidArgument("f32 decode kernel: tokens must be 1..4, got " +
                          std::to_string(key.tokens));
  static KernelCache<F32DecodeKey, F32DecodeKernel> cache;
  return cache.get(key, [&]() -> std::unique_ptr<F32DecodeKernel> {
    if (key.isa == Isa::reference) return make_f32_decode_reference(key);
    try {
      if (key.isa == Isa::avx512) return make_f32_decode_avx512(key);
      return make_f32_decode_avx2(key);
    } catch (const Xbyak::Error& e) {
      throw NotSupported(std::string("generating the ") + isa_name(key.isa) +
                         " f32 decode kernel failed: " + e.what());
    }
  });
}

}  // namespace sparq::jit
