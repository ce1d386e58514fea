// AVX-512 code of the bf16 sparse-input decode kernel (see bf16_sparse_input_kernel.hpp).
#include <bit>
#include <cstddef>

#include "jit/bf16_sparse_input_kernel.hpp"
#include "jit/generator.hpp"
#include "jit/kernel_cache.hpp"
#include "sparq/error.hpp"
#include "sparse/bf16_sparse_input_pack.hpp"

namespace sparq::jit {
namespace {

using namespace Xbyak;

#define ARG(field) ptr[rdi + offsetof(Bf16SparseInputArgs, field)]

class Bf16SparseInputGenerator : public Generator {
 public:
  explicit Bf16SparseInputGenerator(const Bf16SparseInputKernelKey& key)
      : masked_(key.masked),
        slices_(key.chunk_rows / sparse::kBf16SparseInputSlice),
        prefetch_lines_(key.masked ? key.prefetch_lines : key.chunk_rows / 32),
        log2_entry_bytes_(std::countr_zero(static_cast<unsigned>(2 * key.chunk_rows))) {
    const Reg64 columns = rsi, x = rbp, count = r8, base = r9, entries = r10;
    // The output pointer and the chunk count live on the stack, as in the int8 kernel.
    const Address acc_out = qword[rsp], chunks = qword[rsp + 8];
    preamble();
    sub(rsp, 16);
    mov(entries, ARG(entries));
    mov(base, ARG(chunk_base));
    mov(rax, ARG(acc));
    mov(acc_out, rax);
    mov(rax, ARG(chunks));
    mov(chunks, rax);
    mov(eax, 0xffff0000);
    vpbroadcastd(high_mask_, eax);
    Label chunk_loop, input_loop, store;
    L(chunk_loop);
    {
      for (int a = 0; a < 2 * slices_; ++a) vpxord(Zmm(a), Zmm(a), Zmm(a));
      mov(columns, ARG(columns));
      mov(x, ARG(x));
      mov(count, ARG(count));
      test(count, count);
      jz(store, T_NEAR);
      L(input_loop);
      input(columns, x, base, entries);
      add(columns, 4);
      add(x, 4);
      dec(count);
      jnz(input_loop, T_NEAR);
      L(store);
      mov(rax, acc_out);
      for (int a = 0; a < 2 * slices_; ++a) vmovups(ptr[rax + 64 * a], Zmm(a));
      add(acc_out, 64 * 2 * slices_);
      add(base, ARG(chunk_stride));
      dec(chunks);
      jnz(chunk_loop, T_NEAR);
    }
    add(rsp, 16);
    postamble();
    finalize(bf16_sparse_input_features(key));
  }

 private:
  // One non-zero input: the accumulators zmm(2 s), zmm(2 s + 1) += its column's slice s * x.
  void input(const Reg64& columns, const Reg64& x, const Reg64& base, const Reg64& entries) {
    const Reg64 col = rbx, values = rcx;
    mov(eax, dword[columns]);
    if (masked_) {
      mov(eax, dword[base + rax * 4]);
      lea(col, ptr[entries + rax]);
      lea(values, ptr[col + 4 * slices_]);
    } else {
      shl(rax, log2_entry_bytes_);
      lea(col, ptr[base + rax]);
    }
    prefetch_ahead(columns, base, entries);
    vbroadcastss(xb_, dword[x]);
    for (int s = 0; s < slices_; ++s) {
      // Two sets of temporaries, so that consecutive slices do not wait on each other's.
      const int set = 4 * (s % 2);
      const Zmm e(18 + set), t(19 + set), lo(20 + set), hi(21 + set);
      if (masked_) {
        if (s > 0) {
          popcnt(eax, dword[col + 4 * (s - 1)]);
          lea(values, ptr[values + rax * 2]);
        }
        kmovd(k1, dword[col + 4 * s]);
        // A load, then the register form (as the int8 kernel's vpexpandb: the emulated test
        // lane's Bochs is not trusted with the memory form). It may read up to 62 bytes past
        // the slice's values (the entries end in 64 bytes of padding).
        vmovdqu16(t, ptr[values]);
        vpexpandw(e | k1 | T_z, t);
        vpslld(lo, e, 16);
        vpandd(hi, e, high_mask_);
      } else {
        vpslld(lo, ptr[col + 64 * s], 16);
        vpandd(hi, high_mask_, ptr[col + 64 * s]);
      }
      vfmadd231ps(Zmm(2 * s), lo, xb_);
      vfmadd231ps(Zmm(2 * s + 1), hi, xb_);
    }
  }

  // The first prefetch_lines_ lines of the entry of the input kBf16SparseInputPrefetchAhead
  // places ahead.
  void prefetch_ahead(const Reg64& columns, const Reg64& base, const Reg64& entries) {
    mov(r11d, dword[columns + 4 * kBf16SparseInputPrefetchAhead]);
    if (masked_) {
      mov(r11d, dword[base + r11 * 4]);
      add(r11, entries);
    } else {
      shl(r11, log2_entry_bytes_);
      add(r11, base);
    }
    for (int l = 0; l < prefetch_lines_; ++l) prefetcht0(ptr[r11 + 64 * l]);
  }

  const bool masked_;
  const int slices_, prefetch_lines_, log2_entry_bytes_;
  const Zmm xb_ = zmm16, high_mask_ = zmm17;
};

#undef ARG

class Avx512Bf16SparseInputKernel final : public Bf16SparseInputKernel {
 public:
  explicit Avx512Bf16SparseInputKernel(const Bf16SparseInputKernelKey& key)
      : Bf16SparseInputKernel(key), code_(key) {}
  void run(const Bf16SparseInputArgs& args) const override { code_.run(&args); }

 private:
  Bf16SparseInputGenerator code_;
};

}  // namespace

CpuFeatures bf16_sparse_input_features(const Bf16SparseInputKernelKey& key) {
  CpuFeatures f = features_of(Isa::avx512);
  f.avx512_vbmi2 = key.masked;
  return f;
}

std::unique_ptr<Bf16SparseInputKernel> make_bf16_sparse_input_avx512(
    const Bf16SparseInputKernelKey& key) {
  return std::make_unique<Avx512Bf16SparseInputKernel>(key);
}

std::shared_ptr<const Bf16SparseInputKernel> bf16_sparse_input_kernel(
    const Bf16SparseInputKernelKey& key) {
  if (key.chunk_rows < 64 || key.chunk_rows > sparse::kBf16SparseInputMaxChunkRows ||
      !std::has_single_bit(static_cast<unsigned>(key.chunk_rows)))
    throw InvalidArgument(
        "bf16 sparse-input decode kernel: chunk_rows must be a power of two in 64.." +
        std::to_string(sparse::kBf16SparseInputMaxChunkRows) + ", got " +
        std::to_string(key.chunk_rows));
  if (key.prefetch_lines < 1 || key.prefetch_lines > 64)
    throw InvalidArgument("bf16 sparse-input decode kernel: prefetch_lines must be 1..64, got " +
                          std::to_string(key.prefetch_lines));
  const CpuFeatures needs = bf16_sparse_input_features(key);
  if (!can_run(needs))
    throw NotSupported("bf16 sparse-input decode kernel (" +
                       std::string(key.masked ? "masked" : "dense") + " form) needs " +
                       needs.names() + "; this CPU has " + cpu_features().names());
  static KernelCache<Bf16SparseInputKernelKey, Bf16SparseInputKernel> cache;
  return cache.get(key, [&]() -> std::unique_ptr<Bf16SparseInputKernel> {
    try {
      return make_bf16_sparse_input_avx512(key);
    } catch (const Xbyak::Error& e) {
      throw NotSupported(std::string("generating the bf16 sparse-input decode kernel failed: ") +
                         e.what());
    }
  });
}

}  // namespace sparq::jit
