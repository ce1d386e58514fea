// The ggml tensor encodings sparq reads from GGUF files, and their dequantization to fp32:
// F32, F16, BF16, and the 32-element block formats Q8_0 (fp16 scale + 32 int8), Q4_0 (fp16
// scale + 32 nibbles, value (q - 8) * d) and Q4_1 (fp16 scale and minimum + 32 nibbles,
// value q * d + m). Nibble j of a block's byte i holds element i (low) or i + 16 (high).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace sparq::sparse {

enum class GgmlType : uint32_t { f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q8_0 = 8, bf16 = 30 };

// The type for a ggml type id, or nothing when sparq does not read it.
std::optional<GgmlType> ggml_type_from_id(uint32_t id);
// ggml's name of a type id ("Q4_K", "IQ2_XS", ...), "type <id>" for ids it does not know.
std::string ggml_type_name(uint32_t id);

int64_t ggml_block_elements(GgmlType type);  // 1 for the float types, 32 for the Q formats
int64_t ggml_block_bytes(GgmlType type);     // bytes of one block

// Dequantizes `elements` values (a multiple of the block size) from `src` into `dst`.
void dequantize(GgmlType type, const uint8_t* src, int64_t elements, float* dst);

}  // namespace sparq::sparse
