// The storage behind sparq::QuantizedInput: activations quantized for one layer's kernel.
#pragma once

#include <cstdint>

#include "sparq/linear.hpp"
#include "sparse/int8_block_pack.hpp"
#include "src/aligned.hpp"

namespace sparq {

struct QuantizedInput::Impl {
  enum class Form {
    none,
    row_major,
    block_layout,
    decode_s16,
    nm_s8,
    nm_u8,
    nm_u8_windows,
    sparse_input
  };
  Form form = Form::none;
  sparse::Int8Layout layout = sparse::Int8Layout::pairs_i16;  // for block_layout
  int64_t tokens = 0, in = 0;
  // row_major: u8 (q + 128) [tokens x in] (s8 for in > 65793, see DenseLinear);
  // block_layout: the kernel's chunks; decode_s16: s16 [tokens x in];
  // nm_s8: s8 [tokens x in padded to 64]; nm_u8: u8 (q + 128) [tokens x in padded to 8];
  // nm_u8_windows: u8 (q + 128) [in padded to 8, by windows of 8][tokens][8];
  // sparse_input: per token, the non-zero entries' columns and values
  // (src/int8_sparse_input_linear)
  AlignedVector<uint8_t> x;
  AlignedVector<float> scales;
  // Buffers only grow, so a reused QuantizedInput stops allocating after the largest call.
  void reserve(int64_t bytes, int64_t scale_count) {
    if (static_cast<int64_t>(x.size()) < bytes) x.resize(static_cast<size_t>(bytes));
    if (static_cast<int64_t>(scales.size()) < scale_count)
      scales.resize(static_cast<size_t>(scale_count));
  }
};

}  // namespace sparq
