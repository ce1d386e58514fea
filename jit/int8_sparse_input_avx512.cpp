// AVX-512 VNNI code of the int8 sparse-input decode kernel (see int8_sparse_input_kernel.hpp).
#include <algorithm>
#include <bit>
#include <cstddef>

#include "jit/generator.hpp"
#include "jit/int8_sparse_input_kernel.hpp"
#include "jit/kernel_cache.hpp"
#include "sparq/error.hpp"
#include "sparse/int8_sparse_input_pack.hpp"

namespace sparq::jit {
namespace {

using namespace Xbyak;

#define ARG(field) ptr[rdi + offsetof(SparseInputArgs, field)]

class SparseInputGenerator : public Generator {
 public:
  explicit SparseInputGenerator(const SparseInputKernelKey& key)
      : masked_(key.masked),
        long_(key.chunk_rows > sparse::kSparseInputMaxRegisterRows),
        slices_(key.chunk_rows / sparse::kSparseInputSlice),
        prefetch_lines_(key.masked ? key.prefetch_lines : std::min(key.chunk_rows / 64, 4)),
        log2_chunk_rows_(std::countr_zero(static_cast<unsigned>(key.chunk_rows))) {
    const Reg64 columns = rsi, xq = rbp, quads = r8, base = r9, entries = r10;
    // The output pointer and the chunk count live on the stack: the quad loop needs every other
    // register.
    const Address acc_out = qword[rsp], chunks = qword[rsp + 8];
    const Zmm comp = zmm30, c80 = zmm31;
    preamble();
    sub(rsp, 16);
    mov(entries, ARG(entries));
    mov(base, ARG(chunk_base));
    mov(rax, ARG(acc));
    mov(acc_out, rax);
    mov(rax, ARG(chunks));
    mov(chunks, rax);
    vpbroadcastd(comp, ARG(compensation));
    mov(eax, 0x80808080);
    vpbroadcastd(c80, eax);
    if (long_) {
      long_chunk(columns, xq, quads, base, comp);
      add(rsp, 16);
      postamble();
      finalize(sparse_input_features(key));
      return;
    }
    Label chunk_loop, quad_loop, store;
    L(chunk_loop);
    {
      for (int a = 0; a < 4 * slices_; ++a) vpxord(Zmm(a), Zmm(a), Zmm(a));
      mov(columns, ARG(columns));
      mov(xq, ARG(x));
      mov(quads, ARG(quads));
      test(quads, quads);
      jz(store, T_NEAR);
      L(quad_loop);
      quad(columns, xq, base, entries, c80);
      add(columns, 16);
      add(xq, 4);
      dec(quads);
      jnz(quad_loop, T_NEAR);
      L(store);
      mov(rax, acc_out);
      for (int a = 0; a < 4 * slices_; ++a) {
        vpsubd(Zmm(a), Zmm(a), comp);
        vmovdqu32(ptr[rax + 64 * a], Zmm(a));
      }
      add(acc_out, 64 * 4 * slices_);
      add(base, ARG(chunk_stride));
      dec(chunks);
      jnz(chunk_loop, T_NEAR);
    }
    add(rsp, 16);
    postamble();
    finalize(sparse_input_features(key));
  }

 private:
  // Four columns' 64 bytes e[0..3] -> e[k]: the VNNI quads of slice rows 16 k .. 16 k + 15 (the
  // layout's position order); t[0..3] are scratch.
  void vnni_order(const Zmm (&e)[4], const Zmm (&t)[4]) {
    vpunpcklbw(t[0], e[0], e[1]);
    vpunpckhbw(t[1], e[0], e[1]);
    vpunpcklbw(t[2], e[2], e[3]);
    vpunpckhbw(t[3], e[2], e[3]);
    vpunpcklwd(e[0], t[0], t[2]);
    vpunpckhwd(e[1], t[0], t[2]);
    vpunpcklwd(e[2], t[1], t[3]);
    vpunpckhwd(e[3], t[1], t[3]);
  }

  // A long chunk's `slices` x 64 rows from base (dense form): per quad of inputs, one pass over
  // the rows, the sums in the output buffer (L1).
  void long_chunk(const Reg64& columns, const Reg64& xq, const Reg64& quads, const Reg64& base,
                  const Zmm& comp) {
    const Reg64 col[4] = {rbx, r13, r14, r15}, acc = r12, left = rcx, slices = rdx, stride = r10;
    const Zmm e[4] = {zmm16, zmm17, zmm18, zmm19}, t[4] = {zmm20, zmm21, zmm22, zmm23};
    const Zmm xb = zmm24;
    mov(slices, ARG(slices));
    mov(stride, ARG(column_stride));
    // Zero the sums.
    mov(acc, ARG(acc));
    mov(left, slices);
    vpxord(zmm0, zmm0, zmm0);
    Label zero_loop, quad_loop, slice_loop, store_loop, finish;
    L(zero_loop);
    for (int k = 0; k < 4; ++k) vmovdqu32(ptr[acc + 64 * k], zmm0);
    add(acc, 256);
    dec(left);
    jnz(zero_loop, T_NEAR);
    mov(columns, ARG(columns));
    mov(xq, ARG(x));
    mov(quads, ARG(quads));
    test(quads, quads);
    jz(finish, T_NEAR);
    L(quad_loop);
    {
      for (int j = 0; j < 4; ++j) {
        mov(eax, dword[columns + 4 * j]);
        imul(rax, stride);
        lea(col[j], ptr[base + rax]);
      }
      // The first lines of the entries of the quad kSparseInputPrefetchQuads ahead.
      for (int j = 0; j < 4; ++j) {
        mov(eax, dword[columns + 16 * kSparseInputPrefetchQuads + 4 * j]);
        imul(rax, stride);
        for (int l = 0; l < prefetch_lines_; ++l) prefetcht0(ptr[base + rax + 64 * l]);
      }
      vpbroadcastd(xb, dword[xq]);
      mov(acc, ARG(acc));
      mov(left, slices);
      L(slice_loop);
      for (int j = 0; j < 4; ++j) vmovdqu8(e[j], ptr[col[j]]);
      vnni_order(e, t);
      for (int k = 0; k < 4; ++k) {
        vmovdqu32(Zmm(k), ptr[acc + 64 * k]);
        vpdpbusd(Zmm(k), e[k], xb);
        vmovdqu32(ptr[acc + 64 * k], Zmm(k));
      }
      for (int j = 0; j < 4; ++j) add(col[j], 64);
      add(acc, 256);
      dec(left);
      jnz(slice_loop, T_NEAR);
      add(columns, 16);
      add(xq, 4);
      dec(quads);
      jnz(quad_loop, T_NEAR);
    }
    L(finish);
    mov(acc, ARG(acc));
    mov(left, slices);
    L(store_loop);
    for (int k = 0; k < 4; ++k) {
      vmovdqu32(Zmm(k), ptr[acc + 64 * k]);
      vpsubd(Zmm(k), Zmm(k), comp);
      vmovdqu32(ptr[acc + 64 * k], Zmm(k));
    }
    add(acc, 256);
    dec(left);
    jnz(store_loop, T_NEAR);
  }

  // One quad of inputs: the accumulators zmm(4 s + k) += the slices' products.
  void quad(const Reg64& columns, const Reg64& xq, const Reg64& base, const Reg64& entries,
            const Zmm& c80) {
    // col: the entries (masked form: their masks); values: the masked form's slice values.
    const Reg64 col[4] = {rbx, r13, r14, r15}, values[4] = {rcx, rdx, r11, r12};
    const Zmm e[4] = {zmm16, zmm17, zmm18, zmm19}, t[4] = {zmm20, zmm21, zmm22, zmm23};
    const Zmm xb = zmm24;
    for (int j = 0; j < 4; ++j) {
      mov(eax, dword[columns + 4 * j]);
      if (masked_) {
        mov(eax, dword[base + rax * 4]);
        lea(col[j], ptr[entries + rax]);
        lea(values[j], ptr[col[j] + 8 * slices_]);
      } else {
        shl(rax, log2_chunk_rows_);
        lea(col[j], ptr[base + rax]);
      }
    }
    prefetch_ahead(columns, base, entries);
    vpbroadcastd(xb, dword[xq]);
    for (int s = 0; s < slices_; ++s) {
      for (int j = 0; j < 4; ++j) {
        if (masked_) {
          const Opmask k(1 + j);
          if (s > 0) {
            popcnt(rax, qword[col[j] + 8 * (s - 1)]);
            add(values[j], rax);
          }
          kmovq(k, qword[col[j] + 8 * s]);
          vmovdqa64(e[j], c80);
          // A load, then the register form: Bochs 3.0 (the emulated test lane) expands the memory
          // form wrongly, and on Zen 4 both run alike. The load may read up to 64 bytes past the
          // slice's values (the entries end in 64 bytes of padding).
          vmovdqu8(t[j], ptr[values[j]]);
          vpexpandb(e[j] | k, t[j]);
        } else {
          vmovdqu8(e[j], ptr[col[j] + sparse::kSparseInputSlice * s]);
        }
      }
      vnni_order(e, t);
      for (int k = 0; k < 4; ++k) vpdpbusd(Zmm(4 * s + k), e[k], xb);
    }
  }

  // The first prefetch_lines_ lines of the entries of the quad kSparseInputPrefetchQuads ahead.
  void prefetch_ahead(const Reg64& columns, const Reg64& base, const Reg64& entries) {
    const int ahead = 16 * kSparseInputPrefetchQuads;
    for (int j = 0; j < 4; ++j) {
      mov(eax, dword[columns + ahead + 4 * j]);
      if (masked_) {
        mov(eax, dword[base + rax * 4]);
        add(rax, entries);
      } else {
        shl(rax, log2_chunk_rows_);
        add(rax, base);
      }
      for (int l = 0; l < prefetch_lines_; ++l) prefetcht0(ptr[rax + 64 * l]);
    }
  }

  const bool masked_, long_;
  const int slices_, prefetch_lines_, log2_chunk_rows_;
};

#undef ARG

class Avx512SparseInputKernel final : public SparseInputKernel {
 public:
  explicit Avx512SparseInputKernel(const SparseInputKernelKey& key)
      : SparseInputKernel(key), code_(key) {}
  void run(const SparseInputArgs& args) const override {
    // The long-chunk loop counts slices down to zero: 0 would run (and write) without end.
    if (key().chunk_rows > sparse::kSparseInputMaxRegisterRows && args.slices < 1)
      throw InvalidArgument("int8 sparse-input decode kernel: slices must be >= 1 for long chunks");
    code_.run(&args);
  }

 private:
  SparseInputGenerator code_;
};

}  // namespace

CpuFeatures sparse_input_features(const SparseInputKernelKey& key) {
  return key.masked ? vbmi2_features() : features_of(Isa::avx512_vnni);
}

std::unique_ptr<SparseInputKernel> make_sparse_input_avx512(const SparseInputKernelKey& key) {
  return std::make_unique<Avx512SparseInputKernel>(key);
}

std::shared_ptr<const SparseInputKernel> sparse_input_kernel(const SparseInputKernelKey& key) {
  if (const auto why = sparse::sparse_input_chunk_rows_error(key.chunk_rows, key.masked,
                                                             sparse::kSparseInputMaxChunkRows);
      !why.empty())
    throw InvalidArgument("int8 sparse-input decode kernel: " + why);
  if (key.prefetch_lines < 1 || key.prefetch_lines > 64)
    throw InvalidArgument("int8 sparse-input decode kernel: prefetch_lines must be 1..64, got " +
                          std::to_string(key.prefetch_lines));
  const CpuFeatures needs = sparse_input_features(key);
  if (!can_run(needs))
    throw NotSupported("int8 sparse-input decode kernel (" +
                       std::string(key.masked ? "masked" : "dense") + " form) needs " +
                       needs.names() + "; this CPU has " + cpu_features().names());
  static KernelCache<SparseInputKernelKey, SparseInputKernel> cache;
  return cache.get(key, [&]() -> std::unique_ptr<SparseInputKernel> {
    try {
      return make_sparse_input_avx512(key);
    } catch (const Xbyak::Error& e) {
      throw NotSupported(std::string("generating the int8 sparse-input decode kernel failed: ") +
                         e.what());
    }
  });
}

}  // namespace sparq::jit
