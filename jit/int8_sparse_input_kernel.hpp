// The int8 sparse-input decode kernel: one token's product with the weight columns of its
// non-zero inputs only (the layout of sparse/int8_sparse_input_pack.hpp), for a run of row chunks.
// Per quad of non-zero inputs and 64-row slice: the four columns' 64 bytes (loaded, or loaded and
// expanded from their masked form with VBMI2 vpexpandb into a register of 128s, the u8 form of a
// zero weight), 8 byte/word unpacks into VNNI order, and 4 vpdpbusd against the quad's 4 s8
// activations. Chunks of up to 256 rows keep their accumulators (chunk_rows / 16 zmm) in
// registers for the whole input list; longer chunks (dense form 512..4096 rows, a column's entry
// up to one 4 KiB page; masked form 512..8192 rows, a run of 256-row sub-entries) run a range of
// their rows, `slices` x 64 from chunk_base (masked: whole sub-entries), accumulating in the
// output buffer (L1; a 256-row sub-chunk's sums stay in registers over a group of
// kSparseInputGroupQuads quads, and the next group's pieces of it are prefetched into L2). The
// kernel writes the int32 sums minus the compensation, and the layer applies the epilogue
// (jit/row_epilogue.hpp). Why long chunks: on Zen 4, skipping entries of 4 KiB or less saved almost
// nothing (the prefetchers fetch within a page regardless; the bf16 kernel measured the same).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "jit/cpu_features.hpp"

namespace sparq::jit {

// How far ahead (in quads of inputs) the kernel prefetches the entries it will read: the skipped
// inputs leave gaps in the stream that the hardware prefetchers do not jump.
inline constexpr int kSparseInputPrefetchQuads = 8;
// Long chunks (either form): the quads of inputs whose sums for one 256-row sub-chunk stay in
// registers (16 zmm) between loads and stores of the output buffer, and the distance at which the
// next group's sub-entries are prefetched (within the list's padding of kSparseInputPrefetchQuads).
// Zen 4 (docs/benchmarks-avx512.md): with the data in L1, 25 cycles per 4 columns x 64 rows in
// groups of 1 (the sums in L1 every quad), 19.5 in groups of 4; cold, 2 threads, 2:4 weights at
// 50 % zero inputs, one run: groups of 4 2.41x / 2.08x oneDNN's int8 GEMV on 4096 x 4096 /
// 11008 x 4096, groups of 8 1.66x / 1.80x. The dense form in the same loop: 1.66x / 1.67x / 1.52x
// on 4096 x 4096 / 5632 x 2048 / 2048 x 5632 at 40 %, against 1.64x / 1.50x / 1.30x in one pass
// over the rows per quad.
inline constexpr int kSparseInputGroupQuads = 4;
static_assert(kSparseInputGroupQuads <= kSparseInputPrefetchQuads);

// Field order is the JIT code's ABI: offsets are taken with offsetof.
struct SparseInputArgs {
  const uint8_t* entries;  // the layer's entries
  // The first chunk's base: dense form, its first entry (entries + c0 * in * chunk_rows); masked
  // form, its offsets (&offsets[c0 * in]); long chunks, the first row of the range in column 0's
  // entry (entries + entry_offset(c, 0) + r0 % chunk_rows), masked the offsets of the range's
  // first sub-chunk (&offsets[r0 / 256 * in]).
  const void* chunk_base;
  // Bytes from one chunk's base to the next's; long chunks, masked form: from one sub-chunk's
  // offsets to the next's (in * 4).
  int64_t chunk_stride;
  // The non-zero inputs' columns, padded to a multiple of 4, then kSparseInputPrefetchQuads * 4
  // more valid columns (the kernel prefetches the entries of the columns that many quads ahead).
  const int32_t* columns;
  const int32_t* x;       // their s8 activations, 4 per dword (padding: 0)
  int64_t quads;          // number of dwords of x (may be 0)
  int64_t chunks;         // chunks to run (>= 1; long chunks: 1)
  int64_t slices;         // long chunks: the 64-row slices to run (>= 1; masked: a multiple of 4)
  int64_t column_stride;  // long chunks, dense form: bytes from one column's entry to the next's
  int32_t* acc;          // int32 [chunks * chunk_rows] (long chunks: [slices * 64]): the sums minus
                         // the compensation
  int32_t compensation;  // 128 * the sum of the activations (the weights are stored + 128)
};

struct SparseInputKernelKey {
  bool masked = false;   // the masked form (needs AVX512_VBMI2)
  int chunk_rows = 256;  // a power of two in 64..4096 (masked form: 64..8192)
  // Lines prefetched per column ahead in the masked form (short chunks: the mean size of what a
  // call reads of an entry + 1; long chunks: of a sub-entry, rounded up; from the packed weight);
  // the dense form's short chunks prefetch chunk_rows / 64 lines, at most 4, its long chunks a
  // sub-chunk's (whatever this field says).
  int prefetch_lines = 4;
  auto operator<=>(const SparseInputKernelKey&) const = default;
};

class SparseInputKernel {
 public:
  virtual ~SparseInputKernel() = default;
  virtual void run(const SparseInputArgs& args) const = 0;
  const SparseInputKernelKey& key() const { return key_; }
  std::string name() const { return "jit:int8-sparse-input-decode:avx512_vnni"; }

 protected:
  explicit SparseInputKernel(const SparseInputKernelKey& key) : key_(key) {}

 private:
  SparseInputKernelKey key_;
};

// The features a key's code needs: avx512_vnni, plus AVX512_VBMI2 for the masked form.
CpuFeatures sparse_input_features(const SparseInputKernelKey& key);
// Generates (or finds in the process-wide cache) the kernel for a key; NotSupported where this
// process cannot run it, InvalidArgument for a chunk_rows or prefetch_lines out of range.
std::shared_ptr<const SparseInputKernel> sparse_input_kernel(const SparseInputKernelKey& key);
std::unique_ptr<SparseInputKernel> make_sparse_input_avx512(const SparseInputKernelKey& key);

}  // namespace sparq::jit
