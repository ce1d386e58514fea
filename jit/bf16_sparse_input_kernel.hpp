// The bf16 sparse-input decode kernel: one token's product with the weight columns of its
// non-zero inputs only (the layout of sparse/bf16_sparse_input_pack.hpp), for a run of row chunks,
// in fp32. Per non-zero input and 32-row slice: the column's 64 bytes (loaded, or loaded and
// expanded from their masked form with VBMI2 vpexpandw into a zeroed register), widened to fp32
// by one shift (rows 0..15) and one mask (rows 16..31), and two vfmadd231ps against the input
// broadcast. Chunks of up to 256 rows keep their accumulators (chunk_rows / 16 zmm) in registers
// for the whole input list and write the chunk's fp32 sums at the end; longer chunks run a range
// of their rows (`slices` from chunk_base), accumulating in the output buffer (L1): the dense
// form (512..2048 rows) two inputs per pass over it; the masked form (512..4096 rows, whole
// 256-row sub-entries) keeps a 256-row sub-chunk's sums in registers over a group of
// kBf16SparseInputGroupInputs inputs and prefetches the next group's pieces of it into L2, as
// the int8 kernel's long chunks do. The layer applies the epilogue (jit/row_epilogue.hpp,
// float_acc).
//
// Why long chunks: skipping an input skips its column's entry, but on Zen 4 skipping pieces of
// 4 KiB or less saved almost nothing (the prefetchers fetch within a page regardless): with 2048
// rows a column's entry is a whole 4 KiB page.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "jit/cpu_features.hpp"

namespace sparq::jit {

// How far ahead (in inputs) the kernel prefetches the entries it will read: the skipped inputs
// leave gaps in the stream that the hardware prefetchers do not jump.
inline constexpr int kBf16SparseInputPrefetchAhead = 8;
// The masked form's long chunks: the inputs whose sums for one 256-row sub-chunk stay in
// registers (16 zmm) between loads and stores of the output buffer; after each sub-chunk the next
// group's sub-entries of it are prefetched (16 columns in flight, as the int8 kernel's 4 quads).
inline constexpr int kBf16SparseInputGroupInputs = 16;
// Valid columns the input list carries past its count: the short chunks' prefetch reads
// kBf16SparseInputPrefetchAhead ahead, the long masked chunks' the next group (from a last group
// of one input: up to 2 x kBf16SparseInputGroupInputs - 1 past the count).
inline constexpr int kBf16SparseInputListPadding = 2 * kBf16SparseInputGroupInputs;
static_assert(kBf16SparseInputListPadding >= kBf16SparseInputPrefetchAhead &&
              kBf16SparseInputListPadding >= 2 * kBf16SparseInputGroupInputs - 1);

// Field order is the JIT code's ABI: offsets are taken with offsetof.
struct Bf16SparseInputArgs {
  const uint8_t* entries;  // the layer's entries
  // The first chunk's base: dense form, its first entry (entries + c0 * in * chunk_rows * 2);
  // masked form, its offsets (&offsets[c0 * in]); long chunks, the first row of the range in
  // column 0's entry (entries + entry_offset(c, 0) + 2 * (r0 % chunk_rows)), masked the offsets
  // of the range's first sub-chunk (&offsets[r0 / 256 * in]).
  const void* chunk_base;
  // Bytes from one chunk's base to the next's; long chunks, masked form: from one sub-chunk's
  // offsets to the next's (in * 4).
  int64_t chunk_stride;
  // The non-zero inputs' columns, then kBf16SparseInputListPadding more valid columns (the
  // kernel prefetches the entries of columns ahead of the one it reads).
  const int32_t* columns;
  const float* x;  // their values (bf16 values, as the layer rounds them)
  int64_t count;   // number of non-zero inputs (may be 0)
  int64_t chunks;  // chunks to run (>= 1; long chunks: 1)
  float* acc;      // fp32 [chunks * chunk_rows] (long chunks: [slices * 32]): the sums
  // Long chunks: the 32-row slices to run from chunk_base (even, >= 2; masked form: a multiple of
  // 8, whole sub-entries), and (dense form) the bytes from one column's entry to the next's.
  int64_t slices;
  int64_t column_stride;
};

struct Bf16SparseInputKernelKey {
  bool masked = false;   // the masked form (needs AVX512_VBMI2)
  int chunk_rows = 256;  // a power of two in 64..2048 (masked: ..4096)
  // Lines prefetched per column ahead in the masked form (short chunks: its entries' mean size +
  // 1; long chunks: a sub-entry's mean size, rounded up; from the packed weight); the dense form
  // prefetches its chunk_rows / 32, at most 8 (the hardware prefetchers follow a long entry once
  // it has begun).
  int prefetch_lines = 4;
  auto operator<=>(const Bf16SparseInputKernelKey&) const = default;
};

class Bf16SparseInputKernel {
 public:
  virtual ~Bf16SparseInputKernel() = default;
  virtual void run(const Bf16SparseInputArgs& args) const = 0;
  const Bf16SparseInputKernelKey& key() const { return key_; }
  std::string name() const { return "jit:bf16-sparse-input-decode:avx512"; }

 protected:
  explicit Bf16SparseInputKernel(const Bf16SparseInputKernelKey& key) : key_(key) {}

 private:
  Bf16SparseInputKernelKey key_;
};

// The features a key's code needs: AVX-512 F/BW/VL, plus AVX512_VBMI2 for the masked form.
CpuFeatures bf16_sparse_input_features(const Bf16SparseInputKernelKey& key);
// Generates (or finds in the process-wide cache) the kernel for a key; NotSupported where this
// process cannot run it, InvalidArgument for a chunk_rows or prefetch_lines out of range.
std::shared_ptr<const Bf16SparseInputKernel> bf16_sparse_input_kernel(
    const Bf16SparseInputKernelKey& key);
std::unique_ptr<Bf16SparseInputKernel> make_bf16_sparse_input_avx512(
    const Bf16SparseInputKernelKey& key);

}  // namespace sparq::jit
