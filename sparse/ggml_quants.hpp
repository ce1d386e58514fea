// The ggml tensor encodings sparq reads from GGUF files, and their dequantization to fp32, with
// the arithmetic of gguf.quants (llama.cpp's Python package) in the same order, so that values
// agree bit for bit:
//   F32, F16, BF16;
//   32-element blocks: Q8_0 (fp16 d, 32 int8: q d), Q4_0 (fp16 d, 32 nibbles: (q - 8) d), Q4_1
//   (fp16 d and m: q d + m), Q5_0 / Q5_1 (the same with a fifth bit per element from a 32-bit
//   mask: (q - 16) d, q d + m), IQ4_NL (fp16 d, nibbles indexing a 16-value int8 codebook);
//   nibble j of a block's byte i holds element i (low) or i + 16 (high);
//   256-element K-quant super-blocks: Q2_K, Q3_K, Q4_K, Q5_K, Q6_K (16 or 8 sub-blocks with 4-8
//   bit scales, and minimums for Q2_K, Q4_K, Q5_K) and Q8_K (fp32 d, 256 int8, 16 int16 sums).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace sparq::sparse {

enum class GgmlType : uint32_t {
  f32 = 0,
  f16 = 1,
  q4_0 = 2,
  q4_1 = 3,
  q5_0 = 6,
  q5_1 = 7,
  q8_0 = 8,
  q2_k = 10,
  q3_k = 11,
  q4_k = 12,
  q5_k = 13,
  q6_k = 14,
  q8_k = 15,
  iq4_nl = 20,
  bf16 = 30
};

// The type for a ggml type id, or nothing when sparq does not read it.
std::optional<GgmlType> ggml_type_from_id(uint32_t id);
// ggml's name of a type id ("Q4_K", "IQ2_XS", ...), "type <id>" for ids it does not know.
std::string ggml_type_name(uint32_t id);
// The names of the types sparq reads, for messages: "F32, F16, BF16, Q8_0, ...".
std::string ggml_readable_types();

int64_t ggml_block_elements(GgmlType type);  // 1 (float types), 32 (Q*_0, Q*_1, IQ4_NL), 256 (K)
int64_t ggml_block_bytes(GgmlType type);     // bytes of one block

// Dequantizes `elements` values (a multiple of the block size) from `src` into `dst`.
void dequantize(GgmlType type, const uint8_t* src, int64_t elements, float* dst);

}  // namespace sparq::sparse
