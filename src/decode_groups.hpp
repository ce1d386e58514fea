// What the decode layers (int8, f32/bf16) and the int8 2:4 prefill layer share: running a kernel
// over a range of 16-row groups for one step of up to kMaxTokens tokens (4 for decode). Whole
// groups go straight into y; the short last group (out % 16 rows), and every group when the output
// is bf16, go through a staging block (the kernel writes fp32 there, converted to bf16 on the way
// out), so kernels never store partially.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "src/bf16_convert.hpp"

namespace sparq {

struct DecodeStep {
  int64_t out = 0;         // the layer's rows
  int64_t t0 = 0, nt = 0;  // the step's first token and token count (<= kMaxTokens)
  void* y = nullptr;       // [tokens x out] of y_elem bytes (bf16: 2)
  int y_elem = 4;          // 4 (fp32), 1 (int8) or 2 (bf16)
  bool bf16 = false;
  const float* residual = nullptr;  // fp32 [tokens x out] or null
};

// call(g0, g1, y_at, y_stride_bytes, residual_at, residual_stride_bytes) runs the kernel over
// groups [g0, g1); with bf16 output the kernel must write fp32.
template <int64_t kMaxTokens = 4, typename Call>
void run_decode_groups(const DecodeStep& s, int64_t g_begin, int64_t g_end, Call call) {
  constexpr int64_t kRows = 16;
  alignas(64) float stage[kMaxTokens * kRows];
  alignas(64) float stage_res[kMaxTokens * kRows];
  const int64_t full_groups = s.out / kRows, fbytes = sizeof(float);
  auto* y_bytes = static_cast<uint8_t*>(s.y);
  // Groups [g, g1) into the staging block, then out to y.
  auto staged = [&](int64_t g, int64_t g1) {
    const int64_t r0 = g * kRows, rows = std::min(kRows, s.out - r0);
    const float* res_at = nullptr;
    int64_t res_stride = s.out * fbytes;
    if (s.residual && rows == kRows) {
      res_at = s.residual + s.t0 * s.out + r0;
    } else if (s.residual) {  // zeroed first: the kernel reads all 16 rows
      std::memset(stage_res, 0, sizeof stage_res);
      for (int64_t t = 0; t < s.nt; ++t)
        std::memcpy(stage_res + t * kRows, s.residual + (s.t0 + t) * s.out + r0,
                    static_cast<size_t>(rows) * sizeof(float));
      res_at = stage_res;
      res_stride = kRows * fbytes;
    }
    const int64_t stage_elem = s.bf16 ? 4 : s.y_elem;
    call(g, g1, static_cast<void*>(stage), kRows * stage_elem, res_at, res_stride);
    for (int64_t t = 0; t < s.nt; ++t) {
      uint8_t* dst = y_bytes + ((s.t0 + t) * s.out + r0) * s.y_elem;
      const auto* src = reinterpret_cast<const uint8_t*>(stage) + t * kRows * stage_elem;
      if (s.bf16)
        convert_to_bf16(reinterpret_cast<const float*>(src), reinterpret_cast<uint16_t*>(dst),
                        rows);
      else
        std::memcpy(dst, src, static_cast<size_t>(rows * s.y_elem));
    }
  };
  if (s.bf16) {
    for (int64_t g = g_begin; g < g_end; ++g) staged(g, g + 1);
    return;
  }
  const int64_t direct_end = std::min(g_end, full_groups);
  if (g_begin < direct_end)
    call(g_begin, direct_end,
         static_cast<void*>(y_bytes + (s.t0 * s.out + g_begin * kRows) * s.y_elem),
         s.out * s.y_elem, s.residual ? s.residual + s.t0 * s.out + g_begin * kRows : nullptr,
         s.out * fbytes);
  if (direct_end < g_end) staged(full_groups, g_end);
}

}  // namespace sparq
