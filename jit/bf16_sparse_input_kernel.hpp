// The bf16 sparse-input decode kernel: one token's product with the weight columns of its
// non-zero inputs only (the layout of sparse/bf16_sparse_input_pack.hpp), for a run of row chunks,
// in fp32. Per non-zero input and 32-row slice: the column's 64 bytes (loaded, or loaded and
// expanded from their masked form with VBMI2 vpexpandw into a zeroed register), widened to fp32
// by one shift (rows 0..15) and one mask (rows 16..31), and two vfmadd231ps against the input
// broadcast. Chunks of up to 256 rows keep their accumulators (chunk_rows / 16 zmm) in registers
// for the whole input list and write the chunk's fp32 sums at the end; longer chunks (dense form,
// 512..2048 rows) run a range of their rows (`slices` from chunk_base), accumulating in the
// output buffer itself, which stays in L1, two inputs per pass over it. The layer applies the
// epilogue (jit/row_epilogue.hpp, float_acc).
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

// Field order is the JIT code's ABI: offsets are taken with offsetof.
struct Bf16SparseInputArgs {
  const uint8_t* entries;  // the layer's entries
  // The first chunk's base: dense form, its first entry (entries + c0 * in * chunk_rows * 2);
  // masked form, its offsets (&offsets[c0 * in]); long chunks, the first row of the range in
  // column 0's entry (entries + entry_offset(c, 0) + 2 * (r0 % chunk_rows)).
  const void* chunk_base;
  int64_t chunk_stride;  // bytes from one chunk's base to the next's
  // The non-zero inputs' columns, then kBf16SparseInputPrefetchAhead more valid columns (the
  // kernel prefetches the entries of the column that many places ahead).
  const int32_t* columns;
  const float* x;  // their values (bf16 values, as the layer rounds them)
  int64_t count;   // number of non-zero inputs (may be 0)
  int64_t chunks;  // chunks to run (>= 1; long chunks: 1)
  float* acc;      // fp32 [chunks * chunk_rows] (long chunks: [slices * 32]): the sums
  // Long chunks: the 32-row slices to run from chunk_base (even, >= 2), and the bytes from one
  // column's entry to the next's.
  int64_t slices;
  int64_t column_stride;
};

struct Bf16SparseInputKernelKey {
  bool masked = false;   // the masked form (needs AVX512_VBMI2)
  int chunk_rows = 256;  // a power of two in 64..2048 (masked: ..256)
  // Lines prefetched per column ahead in the masked form (its entries' mean size + 1, from the
  // packed weight); the dense form prefetches its chunk_rows / 32, at most 8 (the hardware
  // prefetchers follow a long entry once it has begun).
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
