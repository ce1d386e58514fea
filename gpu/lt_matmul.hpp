// One cuBLASLt matmul shape, "TN" in column-major terms: D [m x n] = A^T B with A [k x m] (a
// row-major [m x k] weight) and B [k x n] (row-major [n x k] activations), so D is the row-major
// [n x m] output. Descriptors and the algorithm (for large products the fastest of the
// heuristic's candidates, timed) are made once per n and alignment of the B and D pointers (the
// heuristic otherwise assumes 256-byte alignment, which a caller's pointer into the middle of a
// buffer need not have). An optional epilogue adds a bias vector (in D's type, one value per row of
// D) and applies ReLU inside the matmul.
#pragma once

#include <cublasLt.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>

#include "gpu/context.hpp"

namespace sparq::gpu {

struct LtTypes {
  cudaDataType ab, cd;
  cublasComputeType_t compute;
  cudaDataType scale;
};

struct LtEpilogue {
  cublasLtEpilogue_t kind = CUBLASLT_EPILOGUE_DEFAULT;
  const void* bias = nullptr;  // device memory the caller keeps alive, for the *_BIAS kinds
};

class LtMatmul {
 public:
  LtMatmul(int device, int64_t m, int64_t k, int64_t lda, int64_t ldb, LtTypes types,
           LtEpilogue epilogue = {});
  // D = epilogue(alpha A^T B + beta C); alpha and beta point to host scalars of types.scale. C has
  // D's layout; null means D (beta = 0 then ignores it). Returns whether the epilogue was applied:
  // false when cuBLASLt had no algorithm with it for this shape and alignment.
  bool run(const void* a, const void* b, int64_t n, const void* c, void* d, const void* alpha,
           const void* beta, cudaStream_t stream) const;
  // Plans n tokens with 256-byte aligned operands now; returns whether with the epilogue.
  bool prepare(int64_t n) const;

 private:
  struct Shape;
  using Key = std::tuple<int64_t, uint32_t, uint32_t>;  // n, alignment of B, of C and D
  // `stream`: the calling run's (null at pack time); inside a graph capture no candidate is timed.
  std::shared_ptr<const Shape> shape_for(const Key& key, cudaStream_t stream) const;
  std::shared_ptr<Shape> make_shape(const Key& key, bool with_epilogue, cudaStream_t stream) const;
  size_t fastest(const Shape& s, int64_t n, const cublasLtMatmulHeuristicResult_t* results,
                 int count, cudaStream_t stream) const;
  int device_;
  int64_t m_, k_, lda_, ldb_;
  LtTypes types_;
  LtEpilogue epilogue_;
  mutable std::mutex mutex_;
  mutable std::map<Key, std::shared_ptr<Shape>> shapes_;
};

}  // namespace sparq::gpu
