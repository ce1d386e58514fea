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

#include "src/linear_kernel.hpp"

namespace sparq {

// Calls of at most this many tokens are decode steps (every decode kernel takes 1..4).
inline constexpr int64_t kDecodeTokens = 4;

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

}  // namespace sparq
