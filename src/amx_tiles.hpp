// The AMX tile configuration sparq's tile code uses (ldtilecfg's 64-byte operand): all eight
// tiles 16 rows of 64 bytes. Code that loads it runs only where jit::cpu_features() reports AMX
// (which includes Linux's permission for the tile data).
#pragma once

#include <cstdint>

namespace sparq {

struct alignas(64) AmxTileConfig {
  uint8_t palette = 1, start_row = 0, reserved[14] = {};
  uint16_t bytes_per_row[16] = {};
  uint8_t rows[16] = {};
};

inline AmxTileConfig sixteen_rows_of_64_bytes() {
  AmxTileConfig c;
  for (int t = 0; t < 8; ++t) {
    c.bytes_per_row[t] = 64;
    c.rows[t] = 16;
  }
  return c;
}

}  // namespace sparq
