// The tensor operand of a kernel's epilogue (LinearOptions::activation and ::operand): none, or
// joined to the activated result by addition (a residual) or multiplication (a gated unit). Every
// kernel key carries one; the kernels read the tensor through their arguments' residual pointer
// and stride, and EpilogueEmitter::combine emits the join for all of them.
#pragma once

#include "sparq/types.hpp"

namespace sparq::jit {

enum class Operand { none, add, multiply };

inline Operand operand_of(bool present, OperandOp op) {
  if (!present) return Operand::none;
  return op == OperandOp::add ? Operand::add : Operand::multiply;
}

// The op of a key's operand (add for none, which joins nothing).
inline OperandOp operand_op(Operand operand) {
  return operand == Operand::multiply ? OperandOp::multiply : OperandOp::add;
}

// A layer's epilogue as LinearOptions gives it: the activation, and how the forward call's tensor
// operand (if any) joins. Made from an Activation alone where the operand is added (a residual).
struct PostOps {
  Activation activation = Activation::none;
  OperandOp operand = OperandOp::add;
  PostOps() = default;
  PostOps(Activation a, OperandOp op = OperandOp::add) : activation(a), operand(op) {}  // NOLINT
  // The key's operand for a call with (present) or without a tensor operand.
  Operand operand_for(bool present) const { return operand_of(present, operand); }
};

// The join in portable code (reference twins and C++ kernels): v + x or v * x.
inline float combine(Operand operand, float v, float x) {
  switch (operand) {
    case Operand::add:
      return v + x;
    case Operand::multiply:
      return v * x;
    case Operand::none:
      break;
  }
  return v;
}

}  // namespace sparq::jit
