// The CPU kernel families in one ranked list. A layer's calls fall in two token ranges: decode
// steps (at most kDecodeTokens tokens) and longer calls (prefill). For each range, the first
// family of the list that serves it and applies to the layer (its description, on this CPU)
// packs the kernel that runs it; a family that serves both ranges and wins both packs once.
// Adding a kernel family is its generator and layer class (a LinearKernel) plus one entry here.
// The sparsity thresholds the entries judge by are src/kernel_thresholds.hpp's, shared with the
// CUDA backend.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "src/kernel_thresholds.hpp"
#include "src/linear_kernel.hpp"

namespace sparq {

enum class TokenRange { decode, prefill, all };

struct KernelFamily {
  const char* name;  // e.g. "int8-4x1", "bf16-2:4"
  TokenRange range;  // the calls it serves
  // Why this family runs the layer's calls of its range here (may be empty: the weight's shape
  // says it), or nullopt where it does not apply.
  std::optional<std::string> (*applies)(const LayerDescription& layer);
  std::shared_ptr<const LinearKernel> (*pack)(const LayerDescription& layer);
};

// The ranked list (first applicable wins).
std::span<const KernelFamily> kernel_families();

// The kernels of a layer, and why.
struct KernelChoice {
  std::shared_ptr<const LinearKernel> prefill;  // every call when decode is null
  std::shared_ptr<const LinearKernel> decode;   // calls of <= kDecodeTokens tokens, or null
  std::string prefill_reason, decode_reason;
};
KernelChoice choose_kernels(const LayerDescription& layer);

// Sets layer.shape and shape_reason: the pattern requested, or under auto the block kernels when
// enough 4x1 blocks are zero (kMinBlockSparsityForSparse), 2:4 for fp32 / bf16 weights that fit
// it, else dense. w: the layer's weight; the statistics must be set.
void resolve_shape(LayerDescription& layer, std::span<const float> w);

}  // namespace sparq
