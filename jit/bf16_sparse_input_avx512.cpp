// AVX-512 code of the bf16 sparse-input decode kernel (see bf16_sparse_input_kernel.hpp).
#include <algorithm>
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
        long_(key.chunk_rows > sparse::kSparseInputMaxRegisterRows),
        slices_(key.chunk_rows / sparse::kBf16SparseInputSlice),
        prefetch_lines_(key.masked ? key.prefetch_lines : std::min(key.chunk_rows / 32, 8)),
        log2_entry_bytes_(std::countr_zero(static_cast<unsigned>(2 * key.chunk_rows))) {
    const Reg64 columns = rsi, x = rbp, count = r8, base = r9, entries = r10;
    // The output pointer and the chunk count live on the stack, as in the int8 kernel.
    const Address acc_out = qword[rsp], chunks = qword[rsp + 8];
    preamble();
    sub(rsp, kStackBytes);
    mov(entries, ARG(entries));
    mov(base, ARG(chunk_base));
    mov(rax, ARG(acc));
    mov(acc_out, rax);
    mov(rax, ARG(chunks));
    mov(chunks, rax);
    mov(eax, 0xffff0000);
    vpbroadcastd(high_mask_, eax);
    if (long_) {
      if (masked_)
        masked_long_chunk();
      else
        long_chunk(columns, x, count, base, acc_out);
      add(rsp, kStackBytes);
      postamble();
      finalize(bf16_sparse_input_features(key));
      return;
    }
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
    add(rsp, kStackBytes);
    postamble();
    finalize(bf16_sparse_input_features(key));
  }

 private:
  // [rsp]: the output pointer, [rsp + 8]: the chunks left; the masked long chunks keep eight more
  // values there (see masked_long_chunk).
  static constexpr int kStackBytes = 80;
  static constexpr int kSubSlices =
      sparse::kSparseInputMaxRegisterRows / sparse::kBf16SparseInputSlice;

  // Zeroes `left` x `zmms` x 16 fp32 sums at acc (clobbers acc, left and zmm0; left >= 1).
  void zero_sums(const Reg64& acc, const Reg64& left, int zmms) {
    Label loop;
    vpxord(zmm0, zmm0, zmm0);
    L(loop);
    for (int k = 0; k < zmms; ++k) vmovups(ptr[acc + 64 * k], zmm0);
    add(acc, 64 * zmms);
    dec(left);
    jnz(loop, T_NEAR);
  }

  // One 32-row slice of a masked (sub-)entry: its mask at `mask`, its values from `values`;
  // the accumulators sum_lo (rows 0..15), sum_hi (16..31) += the widened weights * xb. `set`
  // picks one of two sets of temporaries, so that consecutive slices do not wait on each other's.
  void masked_slice(const Address& mask, const Reg64& values, const Zmm& sum_lo, const Zmm& sum_hi,
                    int set) {
    const Zmm e(18 + 4 * set), t(19 + 4 * set), lo(20 + 4 * set), hi(21 + 4 * set);
    kmovd(k1, mask);
    // A load, then the register form (as the int8 kernel's vpexpandb: the emulated test lane's
    // Bochs is not trusted with the memory form). It may read up to 64 bytes past the slice's
    // values (the entries end in 64 bytes of padding).
    vmovdqu16(t, ptr[values]);
    vpexpandw(e | k1 | T_z, t);
    vpslld(lo, e, 16);
    vpandd(hi, e, high_mask_);
    vfmadd231ps(sum_lo, lo, xb_);
    vfmadd231ps(sum_hi, hi, xb_);
  }

  // A range of a long chunk's rows in the masked form, `slices` x 32 from the sub-chunk whose
  // offsets are at chunk_base (whole 256-row sub-entries). The input list in groups of
  // kBf16SparseInputGroupInputs; per group and sub-chunk, the sub-chunk's 256 sums stay in
  // zmm0..15 over the group's columns (loaded from and stored to the output buffer once per
  // group), each column's sub-entry found through its offset; after each sub-chunk the next
  // group's sub-entries of it are prefetched (hint: L2), so each run is requested a whole group
  // ahead of its use.
  void masked_long_chunk() {
    const Reg64 entries = r8, acc = r9, xq = r10, subp = r11, cols = r12, left = rcx, run = rbx,
                values = rdx;
    // Stack: the group's first column and input, the inputs left, the sub-chunks per call, the
    // bytes from one sub-chunk's offsets to the next's, the sums, the first sub-chunk's offsets,
    // the sub-chunks left, the group's inputs.
    const Address group_columns = qword[rsp + 16], group_x = qword[rsp + 24],
                  inputs_left = qword[rsp + 32], subs = qword[rsp + 40],
                  sub_stride = qword[rsp + 48], sums = qword[rsp + 56], subs_left = qword[rsp + 64],
                  group_inputs = qword[rsp + 72];
    mov(rax, ARG(count));
    mov(inputs_left, rax);
    mov(rax, ARG(slices));
    shr(rax, 3);
    mov(subs, rax);
    mov(rax, ARG(chunk_stride));
    mov(sub_stride, rax);
    mov(rax, ARG(acc));
    mov(sums, rax);
    mov(rax, ARG(columns));
    mov(group_columns, rax);
    mov(rax, ARG(x));
    mov(group_x, rax);
    mov(entries, ARG(entries));
    mov(subp, ARG(chunk_base));
    // The sums start at zero: 256 floats per sub-chunk.
    mov(acc, sums);
    mov(left, subs);
    zero_sums(acc, left, 16);
    // The first sub-chunk's offsets stay in rdi's place from here on (the arguments are read).
    const Reg64 first_sub = rdi;
    mov(first_sub, subp);
    Label group_loop, sub_loop, input_loop, finish;
    cmp(inputs_left, 0);
    je(finish, T_NEAR);
    L(group_loop);
    {
      mov(rax, inputs_left);
      mov(left, kBf16SparseInputGroupInputs);
      cmp(rax, left);
      cmovl(left, rax);
      mov(group_inputs, left);
      mov(acc, sums);
      mov(subp, first_sub);
      mov(rax, subs);
      mov(subs_left, rax);
      L(sub_loop);
      {
        for (int a = 0; a < 16; ++a) vmovups(Zmm(a), ptr[acc + 64 * a]);
        mov(cols, group_columns);
        mov(xq, group_x);
        mov(left, group_inputs);
        L(input_loop);
        {
          mov(eax, dword[cols]);
          mov(eax, dword[subp + rax * 4]);
          lea(run, ptr[entries + rax]);
          lea(values, ptr[run + 4 * kSubSlices]);
          vbroadcastss(xb_, dword[xq]);
          for (int s = 0; s < kSubSlices; ++s) {
            masked_slice(dword[run + 4 * s], values, Zmm(2 * s), Zmm(2 * s + 1), s % 2);
            if (s + 1 < kSubSlices) {
              popcnt(eax, dword[run + 4 * s]);
              lea(values, ptr[values + rax * 2]);
            }
          }
          add(cols, 4);
          add(xq, 4);
          dec(left);
          jnz(input_loop, T_NEAR);
        }
        // cols is now the next group's first column (the list's padding keeps the columns of a
        // group past its end valid).
        for (int j = 0; j < kBf16SparseInputGroupInputs; ++j) {
          mov(eax, dword[cols + 4 * j]);
          mov(eax, dword[subp + rax * 4]);
          for (int l = 0; l < prefetch_lines_; ++l) prefetcht1(ptr[entries + rax + 64 * l]);
        }
        for (int a = 0; a < 16; ++a) vmovups(ptr[acc + 64 * a], Zmm(a));
        add(acc, 1024);
        add(subp, sub_stride);
        dec(subs_left);
        jnz(sub_loop, T_NEAR);
      }
      add(group_columns, 4 * kBf16SparseInputGroupInputs);
      add(group_x, 4 * kBf16SparseInputGroupInputs);
      sub(inputs_left, kBf16SparseInputGroupInputs);
      jg(group_loop, T_NEAR);
    }
    L(finish);
  }
  // A range of a long chunk's rows (dense form), `slices` x 32 from base: the sums accumulate in
  // the output buffer (L1), which each pass over the slices updates with two inputs.
  void long_chunk(const Reg64& columns, const Reg64& x, const Reg64& count, const Reg64& base,
                  const Address& acc_out) {
    const Reg64 col0 = rbx, col1 = rcx, acc = r12, slices = r13, pairs = r14, stride = r15,
                halves = rdx;
    mov(halves, ARG(slices));
    shr(halves, 1);
    mov(stride, ARG(column_stride));
    const Zmm xb0 = xb_, xb1 = zmm15;
    // One input (or two): per slice, acc[rows 0..15] and acc[16..31] += the widened weights * x.
    auto pass = [&](int inputs) {
      mov(acc, acc_out);
      mov(slices, halves);
      Label slice_loop;
      L(slice_loop);
      for (int s = 0; s < 2; ++s) {
        const Zmm lo(4 * s), hi(4 * s + 1), a_lo(4 * s + 2), a_hi(4 * s + 3);
        const Zmm lo1(8 + 4 * s), hi1(9 + 4 * s);
        vmovups(a_lo, ptr[acc + 128 * s]);
        vmovups(a_hi, ptr[acc + 128 * s + 64]);
        vpslld(lo, ptr[col0 + 64 * s], 16);
        vpandd(hi, high_mask_, ptr[col0 + 64 * s]);
        vfmadd231ps(a_lo, lo, xb0);
        vfmadd231ps(a_hi, hi, xb0);
        if (inputs == 2) {
          vpslld(lo1, ptr[col1 + 64 * s], 16);
          vpandd(hi1, high_mask_, ptr[col1 + 64 * s]);
          vfmadd231ps(a_lo, lo1, xb1);
          vfmadd231ps(a_hi, hi1, xb1);
        }
        vmovups(ptr[acc + 128 * s], a_lo);
        vmovups(ptr[acc + 128 * s + 64], a_hi);
      }
      add(acc, 256);
      add(col0, 128);
      if (inputs == 2) add(col1, 128);
      dec(slices);
      jnz(slice_loop, T_NEAR);
    };
    auto entry_of = [&](const Reg64& col, int at) {
      mov(eax, dword[columns + 4 * at]);
      imul(rax, stride);
      lea(col, ptr[base + rax]);
    };
    Label pair_loop, single, done;
    {
      mov(acc, acc_out);
      mov(slices, halves);
      zero_sums(acc, slices, 4);
      mov(columns, ARG(columns));
      mov(x, ARG(x));
      mov(count, ARG(count));
      mov(pairs, count);
      shr(pairs, 1);
      jz(single, T_NEAR);
      L(pair_loop);
      entry_of(col0, 0);
      entry_of(col1, 1);
      for (int at = 0; at < 2; ++at) {  // the first lines of the entries 8 inputs ahead
        mov(r11d, dword[columns + 4 * (kBf16SparseInputPrefetchAhead + at)]);
        imul(r11, stride);
        for (int l = 0; l < prefetch_lines_; ++l) prefetcht0(ptr[base + r11 + 64 * l]);
      }
      add(columns, 8);
      vbroadcastss(xb0, dword[x]);
      vbroadcastss(xb1, dword[x + 4]);
      add(x, 8);
      pass(2);
      dec(pairs);
      jnz(pair_loop, T_NEAR);
      L(single);
      test(count, 1);
      jz(done, T_NEAR);
      entry_of(col0, 0);
      vbroadcastss(xb0, dword[x]);
      pass(1);
      L(done);
    }
  }

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
      if (masked_) {
        if (s > 0) {
          popcnt(eax, dword[col + 4 * (s - 1)]);
          lea(values, ptr[values + rax * 2]);
        }
        masked_slice(dword[col + 4 * s], values, Zmm(2 * s), Zmm(2 * s + 1), s % 2);
        continue;
      }
      const Zmm lo(20 + set), hi(21 + set);
      vpslld(lo, ptr[col + 64 * s], 16);
      vpandd(hi, high_mask_, ptr[col + 64 * s]);
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

  const bool masked_, long_;
  const int slices_, prefetch_lines_, log2_entry_bytes_;
  const Zmm xb_ = zmm16, high_mask_ = zmm17;
};

#undef ARG

class Avx512Bf16SparseInputKernel final : public Bf16SparseInputKernel {
 public:
  explicit Avx512Bf16SparseInputKernel(const Bf16SparseInputKernelKey& key)
      : Bf16SparseInputKernel(key), code_(key) {}
  void run(const Bf16SparseInputArgs& args) const override {
    // The long-chunk loops run slices / 2 pairs (masked form: slices / 8 sub-entries), counted
    // down to zero.
    if (key().chunk_rows > sparse::kSparseInputMaxRegisterRows) {
      const int multiple = key().masked ? 8 : 2;
      if (args.slices < multiple || args.slices % multiple != 0)
        throw InvalidArgument(
            "bf16 sparse-input decode kernel: slices must be a positive multiple "
            "of " +
            std::to_string(multiple) + " for long chunks" +
            (key().masked ? " (whole 256-row sub-entries)" : "") + ", got " +
            std::to_string(args.slices));
    }
    code_.run(&args);
  }

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
  if (const auto why = sparse::sparse_input_chunk_rows_error(
          key.chunk_rows, key.masked, sparse::kBf16SparseInputMaxChunkRows,
          sparse::kBf16SparseInputMaxMaskedChunkRows);
      !why.empty())
    throw InvalidArgument("bf16 sparse-input decode kernel: " + why);
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
