#include "sparse/ggml_quants.hpp"

#include <cstring>

#include "sparse/bf16.hpp"
#include "sparse/f16.hpp"

namespace sparq::sparse {
namespace {

uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

}  // namespace

std::optional<GgmlType> ggml_type_from_id(uint32_t id) {
  switch (id) {
    case 0:
      return GgmlType::f32;
    case 1:
      return GgmlType::f16;
    case 2:
      return GgmlType::q4_0;
    case 3:
      return GgmlType::q4_1;
    case 8:
      return GgmlType::q8_0;
    case 30:
      return GgmlType::bf16;
    default:
      return std::nullopt;
  }
}

std::string ggml_type_name(uint32_t id) {
  // ggml's type ids (4 and 5, the removed Q4_2 and Q4_3, are unused).
  static const char* const kNames[] = {
      "F32",     "F16",    "Q4_0",    "Q4_1",  "",       "",      "Q5_0",  "Q5_1",
      "Q8_0",    "Q8_1",   "Q2_K",    "Q3_K",  "Q4_K",   "Q5_K",  "Q6_K",  "Q8_K",
      "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS",
      "I8",      "I16",    "I32",     "I64",   "F64",    "IQ1_M", "BF16"};
  if (id < sizeof kNames / sizeof kNames[0] && kNames[id][0] != '\0') return kNames[id];
  return "type " + std::to_string(id);
}

int64_t ggml_block_elements(GgmlType type) {
  switch (type) {
    case GgmlType::q4_0:
    case GgmlType::q4_1:
    case GgmlType::q8_0:
      return 32;
    default:
      return 1;
  }
}

int64_t ggml_block_bytes(GgmlType type) {
  switch (type) {
    case GgmlType::f32:
      return 4;
    case GgmlType::f16:
    case GgmlType::bf16:
      return 2;
    case GgmlType::q4_0:
      return 18;
    case GgmlType::q4_1:
      return 20;
    case GgmlType::q8_0:
      return 34;
  }
  return 0;
}

void dequantize(GgmlType type, const uint8_t* src, int64_t elements, float* dst) {
  switch (type) {
    case GgmlType::f32:
      std::memcpy(dst, src, static_cast<size_t>(elements) * 4);
      return;
    case GgmlType::f16:
      for (int64_t i = 0; i < elements; ++i) dst[i] = from_f16(load_u16(src + 2 * i));
      return;
    case GgmlType::bf16:
      for (int64_t i = 0; i < elements; ++i) dst[i] = from_bf16(load_u16(src + 2 * i));
      return;
    case GgmlType::q8_0:
      for (int64_t b = 0; b < elements / 32; ++b, src += 34, dst += 32) {
        const float d = from_f16(load_u16(src));
        for (int j = 0; j < 32; ++j)
          dst[j] = d * static_cast<float>(static_cast<int8_t>(src[2 + j]));
      }
      return;
    case GgmlType::q4_0:
      for (int64_t b = 0; b < elements / 32; ++b, src += 18, dst += 32) {
        const float d = from_f16(load_u16(src));
        for (int j = 0; j < 16; ++j) {
          dst[j] = d * static_cast<float>((src[2 + j] & 0x0f) - 8);
          dst[j + 16] = d * static_cast<float>((src[2 + j] >> 4) - 8);
        }
      }
      return;
    case GgmlType::q4_1:
      for (int64_t b = 0; b < elements / 32; ++b, src += 20, dst += 32) {
        const float d = from_f16(load_u16(src)), m = from_f16(load_u16(src + 2));
        for (int j = 0; j < 16; ++j) {
          dst[j] = d * static_cast<float>(src[4 + j] & 0x0f) + m;
          dst[j + 16] = d * static_cast<float>(src[4 + j] >> 4) + m;
        }
      }
      return;
  }
}

}  // namespace sparq::sparse
