// The one description of what every sparq kernel does to its sums before they leave it: an
// ordered list of post-ops. Every kernel key names its list (key.post_ops()); the JIT generators
// hand it to EpilogueEmitter::apply, which emits each op in order, and the portable kernels and
// reference twins to apply_post_ops below, which computes the same values with the same rounding.
//
//   dequantize  int8 sums: v = float(sum - compensation) * x_scale * w_scale
//   bias        v = v + bias (fused into dequantize's multiply as one fma when it follows it)
//   activation  ReLU, GELU (tanh or erf), SiLU
//   binary      v = v + t or v * t with the call's tensor operand t (a residual, or SwiGLU's up)
//   store       v written as fp32, bf16 (round to nearest even) or int8 (requantized)
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <span>
#include <string>

#include "jit/operand.hpp"
#include "sparq/types.hpp"

namespace sparq::jit {

// The element type a kernel writes.
enum class TileOutput { f32, s8, bf16 };

enum class PostOpKind : uint8_t { dequantize, bias, activation, binary, store };

struct PostOp {
  PostOpKind kind = PostOpKind::store;
  Activation activation = Activation::none;  // activation
  Operand binary = Operand::none;            // binary: add or multiply
  TileOutput output = TileOutput::f32;       // store
  auto operator<=>(const PostOp&) const = default;
};

class PostOpList {
 public:
  static constexpr int kMaxOps = 5;

  PostOpList() = default;

  // The list of a layer's epilogue: dequantize (int8 sums), bias, the activation (none: left
  // out), the join with the tensor operand (none: left out), the store as `output`.
  static PostOpList make(bool dequantize, Activation activation, Operand operand,
                         TileOutput output);

  // Appends one op. The order is the one above, each kind at most once: an op out of order, a
  // second op of a kind, an activation `none` or a binary `none` throws InvalidArgument.
  PostOpList& append(const PostOp& op);

  std::span<const PostOp> ops() const { return {ops_.data(), static_cast<size_t>(count_)}; }
  bool has(PostOpKind kind) const;
  Activation activation() const;  // none without an activation op
  Operand operand() const;        // none without a binary op
  TileOutput output() const;      // f32 without a store op

  // The ops of the kinds that come before `kind` in the order, and those of `kind` and after
  // (whether or not the list has an op of `kind`): kernels that run part of the list on the
  // product's registers and the rest where they copy a staged tile out split it here.
  PostOpList before(PostOpKind kind) const;
  PostOpList from(PostOpKind kind) const;

  // e.g. "dequantize,bias,gelu_tanh,add,store:s8".
  std::string name() const;

  auto operator<=>(const PostOpList&) const = default;

 private:
  std::array<PostOp, kMaxOps> ops_{};
  int count_ = 0;
};

// What one element's post-ops read besides its sum.
struct PostOpInputs {
  int32_t compensation = 0;  // subtracted from an int32 sum (u8 activations)
  float x_scale = 1.0f, w_scale = 1.0f, bias = 0.0f;
  float operand = 0.0f;  // the tensor operand's element
};

// Every op of `list` before its store, on one sum: an int32 sum for lists that dequantize, an
// fp32 sum otherwise (an fp32 sum given to a list that dequantizes, or the reverse, throws
// InvalidArgument). The rounding is the JIT code's: dequantize then bias is one fma.
float apply_post_ops(const PostOpList& list, int32_t sum, const PostOpInputs& in);
float apply_post_ops(const PostOpList& list, float sum, const PostOpInputs& in);

// The store op on one value: writes v to y as `output` (s8 requantized with inv_y_scale).
void store_post_op(TileOutput output, float v, void* y, float inv_y_scale);

// Bytes of one element of `output`.
inline int output_bytes(TileOutput output) {
  return output == TileOutput::f32 ? 4 : output == TileOutput::s8 ? 1 : 2;
}

}  // namespace sparq::jit
