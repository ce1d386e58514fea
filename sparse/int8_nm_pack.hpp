// The packed layout of sparq's int8 2:4 kernel (row at a time, the kept values in the vector
// lanes, for decode-sized token counts).
//
// Per output row and each window of 64 input columns (16 blocks of 4): 32 kept s8 values, then
// 8 bytes of positions -> 40 bytes where dense int8 spends 64 (62.5 %: 8 bits of value and 2 of
// position per kept value).
//   values: block order 0-3, 8-11, 4-7, 12-15 (two per block, in column order): the order in
//     which two in-lane byte shuffles of the window's activations deliver them;
//   positions: the kept column inside its block (0..3, 2 bits) of each of the 32 values: slot s
//     in byte 4 * (s / 16) + s % 4 at bits 2 * ((s % 16) / 4). In this order one in-lane byte
//     shuffle and one per-dword shift spread the 8 bytes over the 32 slots (the AVX2 kernel).
// A block with fewer than 2 non-zeros keeps zeros at position 0. Windows past `in` are zero.
// Activations: s8 [tokens][ceil(in / 64) * 64], zero past `in`.
#pragma once

#include <cstdint>
#include <vector>

#include "src/aligned.hpp"

namespace sparq::sparse {

inline constexpr int kNmWindow = 64;
inline constexpr int kNmWindowBytes = 40;

struct Int8NmWeights {
  int64_t out = 0, in = 0;
  int64_t windows = 0;             // ceil(in / 64) per row
  AlignedVector<uint8_t> entries;  // out x windows x 40 bytes
  std::vector<float> scales, bias;

  int64_t padded_in() const { return windows * kNmWindow; }
  int64_t bytes() const;
};

// wq: s8 [out x in] with at most 2 non-zeros per row in every group of 4 columns
// (InvalidArgument naming the first violation otherwise); w_scale [out]; bias [out] or null.
Int8NmWeights pack_int8_2of4(const int8_t* wq, const float* w_scale, const float* bias, int64_t out,
                             int64_t in);
std::vector<int8_t> to_dense(const Int8NmWeights& w);

// The block (0..15) whose kept value sits at byte `slot` (0..31) of a window's values.
inline int nm_slot_block(int slot) {
  static constexpr int kBlocks[4] = {0, 8, 4, 12};
  return kBlocks[slot / 8] + (slot % 8) / 2;
}

// Where the 2-bit position of the value at byte `slot` (0..31) lives among a window's 8 position
// bytes: byte nm_position_byte(slot), shifted right by nm_position_shift(slot).
inline int nm_position_byte(int slot) { return 4 * (slot / 16) + slot % 4; }
inline int nm_position_shift(int slot) { return 2 * ((slot % 16) / 4); }
inline int nm_slot_position(const uint8_t* entry, int slot) {
  return (entry[32 + nm_position_byte(slot)] >> nm_position_shift(slot)) & 3;
}

}  // namespace sparq::sparse
