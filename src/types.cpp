#include "sparq/types.hpp"

#include <charconv>

#include "sparq/error.hpp"

namespace sparq {
namespace {

bool parse_int(const std::string& s, int& value) {
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  return ec == std::errc() && end == s.data() + s.size() && value > 0;
}

}  // namespace

Pattern Pattern::parse(const std::string& text) {
  if (text == "auto") return automatic();
  if (text == "dense") return dense();
  for (char sep : {'x', ':'}) {
    const auto at = text.find(sep);
    if (at == std::string::npos) continue;
    int a = 0, b = 0;
    if (parse_int(text.substr(0, at), a) && parse_int(text.substr(at + 1), b)) {
      if (sep == 'x') return blocks(a, b);
      if (a <= b) return n_of_m(a, b);
    }
  }
  throw InvalidArgument("pattern '" + text +
                        "': expected auto, dense, RxC blocks (e.g. 4x1) or N:M (e.g. 2:4)");
}

std::string Pattern::to_string() const {
  switch (kind) {
    case Kind::automatic:
      return "auto";
    case Kind::dense:
      return "dense";
    case Kind::block:
      return std::to_string(block.rows) + "x" + std::to_string(block.cols);
    case Kind::n_m:
      return std::to_string(n) + ":" + std::to_string(m);
  }
  return "?";
}

const char* to_string(DType dtype) {
  switch (dtype) {
    case DType::f32:
      return "f32";
    case DType::bf16:
      return "bf16";
    case DType::int8:
      return "int8";
    case DType::f16:
      return "f16";
  }
  return "?";
}

const char* to_string(Activation activation) {
  switch (activation) {
    case Activation::none:
      return "none";
    case Activation::relu:
      return "relu";
    case Activation::gelu_tanh:
      return "gelu_tanh";
    case Activation::gelu_erf:
      return "gelu_erf";
    case Activation::silu:
      return "silu";
  }
  return "?";
}

Activation parse_activation(const std::string& text) {
  for (Activation a : {Activation::none, Activation::relu, Activation::gelu_tanh,
                       Activation::gelu_erf, Activation::silu})
    if (text == to_string(a)) return a;
  throw InvalidArgument("activation '" + text +
                        "': expected none, relu, gelu_tanh, gelu_erf or silu");
}

const char* to_string(OperandOp op) { return op == OperandOp::add ? "add" : "multiply"; }

OperandOp parse_operand_op(const std::string& text) {
  if (text == "add") return OperandOp::add;
  if (text == "multiply") return OperandOp::multiply;
  throw InvalidArgument("operand op '" + text + "': expected add or multiply");
}

DType parse_dtype(const std::string& text) {
  if (text == "f32") return DType::f32;
  if (text == "bf16") return DType::bf16;
  if (text == "int8") return DType::int8;
  if (text == "f16") return DType::f16;
  throw InvalidArgument("dtype '" + text + "': expected f32, bf16, int8 or f16");
}

Device Device::parse(const std::string& text) {
  if (text == "cpu") return cpu();
  if (text == "cuda") return cuda(0);
  if (text.rfind("cuda:", 0) == 0) {
    int index = 0;
    const std::string digits = text.substr(5);
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), index);
    if (!digits.empty() && ec == std::errc() && end == digits.data() + digits.size() && index >= 0)
      return cuda(index);
  }
  throw InvalidArgument("device '" + text + "': expected cpu, cuda or cuda:N (N >= 0)");
}

std::string Device::to_string() const {
  return kind == Kind::cpu ? "cpu" : "cuda:" + std::to_string(index);
}

}  // namespace sparq
