// AVX-512 VNNI code of the int8 sparse-input decode kernel (see int8_sparse_input_kernel.hpp).
#include <algorithm>
#include <bit>
#include <cstddef>
#include <string>

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
    sub(rsp, kStackBytes);
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
      grouped_long_chunk(comp, c80);
      add(rsp, kStackBytes);
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
    add(rsp, kStackBytes);
    postamble();
    finalize(sparse_input_features(key));
  }

 private:
  // [rsp]: the output pointer, [rsp + 8]: the chunks left; long chunks keep eleven more values
  // there (see grouped_long_chunk).
  static constexpr int kStackBytes = 112;
  static constexpr int kSubSlices = sparse::kSparseInputMaxRegisterRows / sparse::kSparseInputSlice;

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

  // Zeroes `slices` x 64 int32 sums at acc (clobbers acc and left).
  void zero_sums(const Reg64& acc, const Reg64& left) {
    Label loop;
    vpxord(zmm0, zmm0, zmm0);
    L(loop);
    for (int k = 0; k < 4; ++k) vmovdqu32(ptr[acc + 64 * k], zmm0);
    add(acc, 256);
    dec(left);
    jnz(loop, T_NEAR);
  }

  // sums -= comp over `slices` x 64 int32 sums at acc (clobbers acc and left).
  void subtract_compensation(const Reg64& acc, const Reg64& left, const Zmm& comp) {
    Label loop;
    L(loop);
    for (int k = 0; k < 4; ++k) {
      vmovdqu32(Zmm(k), ptr[acc + 64 * k]);
      vpsubd(Zmm(k), Zmm(k), comp);
      vmovdqu32(ptr[acc + 64 * k], Zmm(k));
    }
    add(acc, 256);
    dec(left);
    jnz(loop, T_NEAR);
  }

  // Column rax's masked (sub-)entry of `slices` slices through its offset at offsets[rax]: its
  // masks at run, its values from values.
  void masked_entry(const Reg64& offsets, const Reg64& entries, const Reg64& run,
                    const Reg64& values, int slices) {
    mov(eax, dword[offsets + rax * 4]);
    lea(run, ptr[entries + rax]);
    lea(values, ptr[run + 8 * slices]);
  }

  // One 64-byte slice expanded from its masked form: the mask at `mask` (into k), the values
  // from `values` (through `scratch`); e ends with 128 (a zero weight) where the mask is clear.
  void expand_slice(const Address& mask, const Address& values, const Opmask& k, const Zmm& e,
                    const Zmm& scratch, const Zmm& c80) {
    kmovq(k, mask);
    vmovdqa64(e, c80);
    // A load, then the register form: Bochs 3.0 (the emulated test lane) expands the memory form
    // wrongly, and on Zen 4 both run alike. The load may read up to 64 bytes past the slice's
    // values (the entries end in 64 bytes of padding).
    vmovdqu8(scratch, values);
    vpexpandb(e | k, scratch);
  }

  // The four columns' 64-byte slices, expanded: masks at mask[j] (an address), values from
  // values[j].
  void expand_slices(const Address (&mask)[4], const Reg64 (&values)[4], const Zmm (&e)[4],
                     const Zmm (&t)[4], const Zmm& c80) {
    for (int j = 0; j < 4; ++j)
      expand_slice(mask[j], ptr[values[j]], Opmask(1 + j), e[j], t[j], c80);
  }

  // A long chunk's `slices` x 64 rows, either form (masked: a multiple of 256 rows). The input
  // list in groups of kSparseInputGroupQuads quads; per group and 256-row sub-chunk (the dense
  // form's last one may be 64-192 rows), the sub-chunk's sums stay in registers over the group's
  // columns (loaded from and stored to the output buffer once per group). Each column's
  // sub-entry is found on its own (masked: through its offset, so that no load waits on another
  // sub-entry's bytes). After each sub-chunk the next group's sub-entries of the same sub-chunk are
  // prefetched (hint: L2), so each run is requested a whole group ahead of its use: the skipped
  // inputs leave gaps the hardware prefetchers do not jump.
  void grouped_long_chunk(const Zmm& comp, const Zmm& c80) {
    const Reg64 entries = r8, acc = r9, subp = r11, left = rcx;
    // Stack: the group's first column and activation, the quads left, the whole sub-chunks per
    // call, the bytes from one sub-chunk's first byte (dense) or offsets (masked) to the next's,
    // the sums, the first sub-chunk's base, the sub-chunks left, the group's quads, the dense
    // form's column stride and its last slices (slices % 4).
    const Address group_columns = qword[rsp + 16], group_x = qword[rsp + 24],
                  quads_left = qword[rsp + 32], subs = qword[rsp + 40],
                  sub_stride = qword[rsp + 48], sums = qword[rsp + 56], first_sub = qword[rsp + 64],
                  subs_left = qword[rsp + 72], group_quads = qword[rsp + 80],
                  column_stride = qword[rsp + 88], tail = qword[rsp + 96];
    mov(rax, ARG(quads));
    mov(quads_left, rax);
    mov(rax, ARG(slices));
    shr(rax, 2);
    mov(subs, rax);
    mov(rax, ARG(slices));
    and_(rax, 3);
    mov(tail, rax);
    if (masked_) {
      mov(rax, ARG(chunk_stride));
    } else {
      mov(rax, ARG(column_stride));
      mov(column_stride, rax);
      mov(eax, 64 * kSubSlices);
    }
    mov(sub_stride, rax);
    mov(rax, ARG(acc));
    mov(sums, rax);
    mov(rax, ARG(chunk_base));
    mov(first_sub, rax);
    mov(rax, ARG(columns));
    mov(group_columns, rax);
    mov(rax, ARG(x));
    mov(group_x, rax);
    mov(acc, sums);
    mov(left, ARG(slices));
    mov(entries, ARG(entries));  // the last use of rdi as the argument pointer
    zero_sums(acc, left);
    Label group_loop, sub_loop, last_sub, group_end, finish;
    cmp(quads_left, 0);
    je(finish, T_NEAR);
    L(group_loop);
    {
      // This group's quads: min(kSparseInputGroupQuads, quads left).
      mov(rax, quads_left);
      mov(left, kSparseInputGroupQuads);
      cmp(rax, left);
      cmovl(left, rax);
      mov(group_quads, left);
      mov(acc, sums);
      mov(subp, first_sub);
      mov(rax, subs);
      mov(subs_left, rax);
      test(rax, rax);
      jz(last_sub, T_NEAR);
      L(sub_loop);
      grouped_sub_chunk(kSubSlices, c80, group_columns, group_x, group_quads, column_stride);
      add(acc, 64 * 4 * kSubSlices);
      add(subp, sub_stride);
      dec(subs_left);
      jnz(sub_loop, T_NEAR);
      L(last_sub);
      if (!masked_) {
        // The dense form's last 1-3 slices.
        Label not1, not2;
        mov(rax, tail);
        cmp(rax, 1);
        jne(not1, T_NEAR);
        grouped_sub_chunk(1, c80, group_columns, group_x, group_quads, column_stride);
        jmp(group_end, T_NEAR);
        L(not1);
        cmp(rax, 2);
        jne(not2, T_NEAR);
        grouped_sub_chunk(2, c80, group_columns, group_x, group_quads, column_stride);
        jmp(group_end, T_NEAR);
        L(not2);
        cmp(rax, 3);
        jne(group_end, T_NEAR);
        grouped_sub_chunk(3, c80, group_columns, group_x, group_quads, column_stride);
      }
      L(group_end);
      add(group_columns, 16 * kSparseInputGroupQuads);
      add(group_x, 4 * kSparseInputGroupQuads);
      sub(quads_left, kSparseInputGroupQuads);
      jg(group_loop, T_NEAR);
    }
    L(finish);
    mov(acc, sums);
    mov(rax, subs);
    lea(left, ptr[rax * 4]);
    add(left, tail);
    subtract_compensation(acc, left, comp);
  }

  // One sub-chunk of `n` slices (1..4; masked: 4) for the group: its 4 n sums from acc into
  // zmm0.., the group's quads, the next group's prefetches, the sums back to acc.
  void grouped_sub_chunk(int n, const Zmm& c80, const Address& group_columns,
                         const Address& group_x, const Address& group_quads,
                         const Address& column_stride) {
    const Reg64 entries = r8, acc = r9, xq = r10, subp = r11, cols = r12, left = rcx;
    const Reg64 run[4] = {rbx, r13, r14, r15}, values[4] = {rdx, rsi, rbp, rdi};
    const Zmm e[4] = {zmm16, zmm17, zmm18, zmm19}, t[4] = {zmm20, zmm21, zmm22, zmm23};
    const Zmm loaded[4] = {zmm25, zmm26, zmm27, zmm28};
    const Zmm xb = zmm24;
    for (int a = 0; a < 4 * n; ++a) vmovdqu32(Zmm(a), ptr[acc + 64 * a]);
    mov(cols, group_columns);
    mov(xq, group_x);
    mov(left, group_quads);
    Label quad_loop;
    L(quad_loop);
    {
      for (int j = 0; j < 4; ++j) {
        mov(eax, dword[cols + 4 * j]);
        if (masked_) {
          masked_entry(subp, entries, run[j], values[j], kSubSlices);
        } else {
          imul(rax, column_stride);
          lea(run[j], ptr[subp + rax]);
        }
      }
      vpbroadcastd(xb, dword[xq]);
      for (int s = 0; s < n; ++s) {
        for (int j = 0; j < 4; ++j) {
          if (!masked_) {
            vmovdqu8(e[j], ptr[run[j] + sparse::kSparseInputSlice * s]);
            continue;
          }
          expand_slice(qword[run[j] + 8 * s], ptr[values[j]], Opmask(1 + j), e[j], loaded[j], c80);
          if (s + 1 < n) {
            popcnt(rax, qword[run[j] + 8 * s]);
            add(values[j], rax);
          }
        }
        vnni_order(e, t);
        for (int k = 0; k < 4; ++k) vpdpbusd(Zmm(4 * s + k), e[k], xb);
      }
      add(cols, 16);
      add(xq, 4);
      dec(left);
      jnz(quad_loop, T_NEAR);
    }
    // cols is now the next group's first column (the list's padding keeps the columns of a group
    // past its end valid).
    for (int j = 0; j < 4 * kSparseInputGroupQuads; ++j) {
      mov(eax, dword[cols + 4 * j]);
      if (masked_) {
        mov(eax, dword[subp + rax * 4]);
        for (int l = 0; l < prefetch_lines_; ++l) prefetcht1(ptr[entries + rax + 64 * l]);
      } else {
        imul(rax, column_stride);
        for (int l = 0; l < n; ++l) prefetcht1(ptr[subp + rax + 64 * l]);
      }
    }
    for (int a = 0; a < 4 * n; ++a) vmovdqu32(ptr[acc + 64 * a], Zmm(a));
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
        masked_entry(base, entries, col[j], values[j], slices_);
      } else {
        shl(rax, log2_chunk_rows_);
        lea(col[j], ptr[base + rax]);
      }
    }
    prefetch_ahead(columns, base, entries);
    vpbroadcastd(xb, dword[xq]);
    for (int s = 0; s < slices_; ++s) {
      if (masked_) {
        if (s > 0)
          for (int j = 0; j < 4; ++j) {
            popcnt(rax, qword[col[j] + 8 * (s - 1)]);
            add(values[j], rax);
          }
        const Address mask[4] = {qword[col[0] + 8 * s], qword[col[1] + 8 * s],
                                 qword[col[2] + 8 * s], qword[col[3] + 8 * s]};
        expand_slices(mask, values, e, t, c80);
      } else {
        for (int j = 0; j < 4; ++j) vmovdqu8(e[j], ptr[col[j] + sparse::kSparseInputSlice * s]);
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
    // The long-chunk loops count slices (masked form: sub-entries of 4 slices) down to zero: 0
    // would run (and write) without end.
    if (key().chunk_rows > sparse::kSparseInputMaxRegisterRows) {
      if (args.slices < 1)
        throw InvalidArgument(
            "int8 sparse-input decode kernel: slices must be >= 1 for long chunks");
      if (key().masked && args.slices % 4 != 0)
        throw InvalidArgument(
            "int8 sparse-input decode kernel: the masked form's long chunks run whole 256-row "
            "sub-entries; slices must be a multiple of 4, got " +
            std::to_string(args.slices));
    }
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
  if (const auto why = sparse::sparse_input_chunk_rows_error(
          key.chunk_rows, key.masked, sparse::kSparseInputMaxChunkRows,
          sparse::kSparseInputMaxMaskedChunkRows);
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
