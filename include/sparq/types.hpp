// Value types shared by the public API: dtypes, sparsity patterns, activations.
#pragma once

#include <cstdint>
#include <string>

namespace sparq {

// f16 (IEEE half) runs on Device::cuda only; the CPU kernels take f32, bf16 and int8.
enum class DType { f32, bf16, int8, f16 };

// An RxC block: R consecutive output rows x C consecutive input columns of an [out x in] weight.
struct BlockShape {
  int rows = 4;
  int cols = 1;
  friend bool operator==(const BlockShape&, const BlockShape&) = default;
};

// Which sparsity structure a layer is packed for.
struct Pattern {
  enum class Kind { automatic, dense, block, n_m };
  Kind kind = Kind::automatic;
  BlockShape block{};  // for Kind::block
  int n = 2, m = 4;    // for Kind::n_m

  static Pattern automatic() { return {}; }
  static Pattern dense() { return {Kind::dense, {}, 2, 4}; }
  static Pattern blocks(int rows, int cols) { return {Kind::block, {rows, cols}, 2, 4}; }
  static Pattern n_of_m(int n, int m) { return {Kind::n_m, {}, n, m}; }
  // Parses "auto", "dense", "4x1" (rows x cols) or "2:4"; throws InvalidArgument otherwise.
  static Pattern parse(const std::string& text);
  std::string to_string() const;
};

// gelu_tanh: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (BERT's "gelu_new");
// gelu_erf: 0.5 x (1 + erf(x / sqrt 2)) (the exact GELU); silu: x / (1 + exp(-x)) (Llama's MLP).
enum class Activation { none, relu, gelu_tanh, gelu_erf, silu };

// How a forward call's tensor operand (its `residual` argument, [tokens x out]) joins the result,
// after the activation: added (a residual connection) or multiplied element by element (a gated
// unit: SwiGLU's silu(x gate^T) * up, with up as the operand).
enum class OperandOp { add, multiply };

// Where a layer runs: the CPU, or CUDA device `index` (the CUDA backend, gpu/, when sparq was built
// with it and a driver and a GPU of compute capability >= 8.0 are present).
struct Device {
  enum class Kind { cpu, cuda };
  Kind kind = Kind::cpu;
  int index = 0;

  static Device cpu() { return {}; }
  static Device cuda(int index = 0) { return {Kind::cuda, index}; }
  // Parses "cpu", "cuda" or "cuda:N"; throws InvalidArgument otherwise.
  static Device parse(const std::string& text);
  std::string to_string() const;
  friend bool operator==(const Device&, const Device&) = default;
};

const char* to_string(DType dtype);
const char* to_string(Activation activation);
Activation parse_activation(const std::string& text);  // "none" | "relu" | "gelu_tanh" | ...
const char* to_string(OperandOp op);
OperandOp parse_operand_op(const std::string& text);  // "add" | "multiply"
DType parse_dtype(const std::string& text);           // "f32" | "bf16" | "int8" | "f16"

}  // namespace sparq
