#include "sparse/ggml_quants.hpp"

#include <cstring>

#include "sparse/bf16.hpp"
#include "sparse/f16.hpp"

namespace sparq::sparse {
namespace {

struct TypeInfo {
  GgmlType type;
  int64_t block_elements, block_bytes;
};

// Every type sparq reads, in ggml's id order.
constexpr TypeInfo kTypes[] = {
    {GgmlType::f32, 1, 4},      {GgmlType::f16, 1, 2},      {GgmlType::q4_0, 32, 18},
    {GgmlType::q4_1, 32, 20},   {GgmlType::q5_0, 32, 22},   {GgmlType::q5_1, 32, 24},
    {GgmlType::q8_0, 32, 34},   {GgmlType::q2_k, 256, 84},  {GgmlType::q3_k, 256, 110},
    {GgmlType::q4_k, 256, 144}, {GgmlType::q5_k, 256, 176}, {GgmlType::q6_k, 256, 210},
    {GgmlType::q8_k, 256, 292}, {GgmlType::iq4_nl, 32, 18}, {GgmlType::bf16, 1, 2}};

const TypeInfo* info(GgmlType type) {
  for (const TypeInfo& t : kTypes)
    if (t.type == type) return &t;
  return nullptr;
}

uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
float half(const uint8_t* p) { return from_f16(load_u16(p)); }
float f(int v) { return static_cast<float>(v); }

// Q5_0 / Q5_1: element j's fifth bit is bit j of the 32-bit mask.
int q5_value(const uint8_t* qh, const uint8_t* qs, int j) {
  const uint32_t mask = load_u32(qh);
  const int low = j < 16 ? qs[j] & 0x0f : qs[j - 16] >> 4;
  return low | static_cast<int>((mask >> j) & 1) << 4;
}

// IQ4_NL's codebook (ggml's kvalues_iq4nl).
constexpr int8_t kIq4nlValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                     1,    13,   25,  38,  53,  69,  89,  113};

// The 8 6-bit scales and minimums of a Q4_K / Q5_K super-block (12 bytes): sub-blocks 0-3 in the
// low 6 bits of bytes 0-3 (scales) and 4-7 (minimums); 4-7 in the nibbles of bytes 8-11 with
// their top 2 bits in the top bits of bytes 0-3 / 4-7.
void scale_min_k4(const uint8_t* s, int j, int& scale, int& min) {
  if (j < 4) {
    scale = s[j] & 63;
    min = s[j + 4] & 63;
  } else {
    scale = (s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4);
    min = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// The 16 6-bit scales of a Q3_K super-block (12 bytes), minus 32: sub-block i's low 4 bits are
// nibble i / 8 of byte i % 8, its high 2 bits bits 2 (i / 4) of byte 8 + i % 4.
int scale_k3(const uint8_t* s, int i) {
  const int low = (s[i % 8] >> (4 * (i / 8))) & 0x0f;
  const int high = (s[8 + i % 4] >> (2 * (i / 4))) & 3;
  return (low | high << 4) - 32;
}

// The 2 low bits of element e in Q2_K and Q3_K: shift 2 ((e % 128) / 32) of byte 32 (e / 128) +
// e % 32.
int low2(const uint8_t* qs, int e) {
  return (qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
}

void dequantize_q2_k(const uint8_t* b, float* y) {
  const uint8_t* scales = b;
  const uint8_t* qs = b + 16;
  const float d = half(b + 80), dmin = half(b + 82);
  for (int sub = 0; sub < 16; ++sub) {  // 16 elements each: a 4-bit scale and minimum
    const float dl = d * f(scales[sub] & 0x0f), ml = dmin * f(scales[sub] >> 4);
    for (int e = 16 * sub; e < 16 * sub + 16; ++e) y[e] = dl * f(low2(qs, e)) - ml;
  }
}

void dequantize_q3_k(const uint8_t* b, float* y) {
  const uint8_t* hmask = b;
  const uint8_t* qs = b + 32;
  const uint8_t* scales = b + 96;
  const float d = half(b + 108);
  // The high bit of element e is bit e / 32 of hmask byte e % 32; its absence subtracts 4.
  for (int sub = 0; sub < 16; ++sub) {
    const float dl = d * f(scale_k3(scales, sub));
    for (int e = 16 * sub; e < 16 * sub + 16; ++e)
      y[e] = dl * f(low2(qs, e) - ((hmask[e % 32] >> (e / 32)) & 1 ? 0 : 4));
  }
}

// Q4_K and Q5_K: element e's nibble is the low (e % 64 < 32) or high one of byte 32 (e / 64) +
// e % 32; Q5_K's fifth bit is bit e / 32 of qh byte e % 32.
void dequantize_q45_k(const uint8_t* b, const uint8_t* qh, const uint8_t* qs, float* y) {
  const float d = half(b), dmin = half(b + 2);
  for (int sub = 0; sub < 8; ++sub) {  // 32 elements each: a 6-bit scale and minimum
    int scale, min;
    scale_min_k4(b + 4, sub, scale, min);
    const float dl = d * f(scale), ml = dmin * f(min);
    const uint8_t* bytes = qs + 32 * (sub / 2);
    for (int l = 0; l < 32; ++l) {
      int q = sub % 2 == 0 ? bytes[l] & 0x0f : bytes[l] >> 4;
      if (qh) q |= ((qh[l] >> sub) & 1) << 4;
      y[32 * sub + l] = dl * f(q) - ml;
    }
  }
}

void dequantize_q6_k(const uint8_t* b, float* y) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const auto* scales = reinterpret_cast<const int8_t*>(b + 192);
  const float d = half(b + 208);
  // Element e (half h = e / 128, r = e % 128): the low (r < 64) or high nibble of ql byte 64 h +
  // r % 64, and 2 high bits at shift 2 (r / 32) of qh byte 32 h + r % 32; minus 32.
  for (int sub = 0; sub < 16; ++sub) {
    const float dl = d * f(scales[sub]);
    for (int e = 16 * sub; e < 16 * sub + 16; ++e) {
      const int h = e / 128, r = e % 128;
      const uint8_t lb = ql[64 * h + r % 64];
      const int low = r < 64 ? lb & 0x0f : lb >> 4;
      const int high = (qh[32 * h + r % 32] >> (2 * (r / 32))) & 3;
      y[e] = dl * f((low | high << 4) - 32);
    }
  }
}

}  // namespace

std::optional<GgmlType> ggml_type_from_id(uint32_t id) {
  for (const TypeInfo& t : kTypes)
    if (static_cast<uint32_t>(t.type) == id) return t.type;
  return std::nullopt;
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

std::string ggml_readable_types() {
  std::string names;
  for (const TypeInfo& t : kTypes)
    names += (names.empty() ? "" : ", ") + ggml_type_name(static_cast<uint32_t>(t.type));
  return names;
}

int64_t ggml_block_elements(GgmlType type) {
  const TypeInfo* t = info(type);
  return t ? t->block_elements : 1;
}

int64_t ggml_block_bytes(GgmlType type) {
  const TypeInfo* t = info(type);
  return t ? t->block_bytes : 0;
}

void dequantize(GgmlType type, const uint8_t* src, int64_t elements, float* dst) {
  const int64_t block = ggml_block_elements(type), bytes = ggml_block_bytes(type);
  for (int64_t b = 0; b < elements / block; ++b, src += bytes, dst += block) {
    switch (type) {
      case GgmlType::f32:
        std::memcpy(dst, src, 4);
        break;
      case GgmlType::f16:
        dst[0] = half(src);
        break;
      case GgmlType::bf16:
        dst[0] = from_bf16(load_u16(src));
        break;
      case GgmlType::q8_0: {
        const float d = half(src);
        for (int j = 0; j < 32; ++j) dst[j] = d * f(static_cast<int8_t>(src[2 + j]));
        break;
      }
      case GgmlType::q4_0: {
        const float d = half(src);
        for (int j = 0; j < 16; ++j) {
          dst[j] = d * f((src[2 + j] & 0x0f) - 8);
          dst[j + 16] = d * f((src[2 + j] >> 4) - 8);
        }
        break;
      }
      case GgmlType::q4_1: {
        const float d = half(src), m = half(src + 2);
        for (int j = 0; j < 16; ++j) {
          dst[j] = d * f(src[4 + j] & 0x0f) + m;
          dst[j + 16] = d * f(src[4 + j] >> 4) + m;
        }
        break;
      }
      case GgmlType::q5_0: {
        const float d = half(src);
        for (int j = 0; j < 32; ++j) dst[j] = d * f(q5_value(src + 2, src + 6, j) - 16);
        break;
      }
      case GgmlType::q5_1: {
        const float d = half(src), m = half(src + 2);
        for (int j = 0; j < 32; ++j) dst[j] = d * f(q5_value(src + 4, src + 8, j)) + m;
        break;
      }
      case GgmlType::iq4_nl: {
        const float d = half(src);
        for (int j = 0; j < 16; ++j) {
          dst[j] = d * f(kIq4nlValues[src[2 + j] & 0x0f]);
          dst[j + 16] = d * f(kIq4nlValues[src[2 + j] >> 4]);
        }
        break;
      }
      case GgmlType::q2_k:
        dequantize_q2_k(src, dst);
        break;
      case GgmlType::q3_k:
        dequantize_q3_k(src, dst);
        break;
      case GgmlType::q4_k:
        dequantize_q45_k(src, nullptr, src + 16, dst);
        break;
      case GgmlType::q5_k:
        dequantize_q45_k(src, src + 16, src + 48, dst);
        break;
      case GgmlType::q6_k:
        dequantize_q6_k(src, dst);
        break;
      case GgmlType::q8_k: {
        float d;
        std::memcpy(&d, src, 4);
        for (int j = 0; j < 256; ++j) dst[j] = d * f(static_cast<int8_t>(src[4 + j]));
        break;
      }
    }
  }
}

}  // namespace sparq::sparse
