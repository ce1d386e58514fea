#include "jit/post_ops.hpp"

#include <cmath>
#include <cstring>

#include "sparq/error.hpp"
#include "sparse/bf16.hpp"
#include "sparse/reference.hpp"

namespace sparq::jit {
namespace {

const char* kind_name(PostOpKind kind) {
  switch (kind) {
    case PostOpKind::dequantize:
      return "dequantize";
    case PostOpKind::bias:
      return "bias";
    case PostOpKind::activation:
      return "activation";
    case PostOpKind::binary:
      return "binary";
    case PostOpKind::store:
      return "store";
  }
  return "?";
}

const char* output_name(TileOutput output) {
  return output == TileOutput::f32 ? "f32" : output == TileOutput::s8 ? "s8" : "bf16";
}

// The ops after dequantize (from index `first`), on a float value.
float finish(std::span<const PostOp> ops, size_t first, float v, const PostOpInputs& in) {
  for (size_t i = first; i < ops.size(); ++i) {
    switch (ops[i].kind) {
      case PostOpKind::dequantize:
        break;  // never after the first op (append's order)
      case PostOpKind::bias:
        v += in.bias;
        break;
      case PostOpKind::activation:
        v = sparse::activate(v, ops[i].activation);
        break;
      case PostOpKind::binary:
        v = combine(ops[i].binary, v, in.operand);
        break;
      case PostOpKind::store:
        break;
    }
  }
  return v;
}

}  // namespace

PostOpList PostOpList::make(bool dequantize, Activation activation, Operand operand,
                            TileOutput output) {
  PostOpList list;
  if (dequantize) list.append({PostOpKind::dequantize});
  list.append({PostOpKind::bias});
  if (activation != Activation::none) list.append({PostOpKind::activation, activation});
  if (operand != Operand::none) list.append({PostOpKind::binary, Activation::none, operand});
  list.append({PostOpKind::store, Activation::none, Operand::none, output});
  return list;
}

PostOpList& PostOpList::append(const PostOp& op) {
  if (count_ > 0 && ops_[count_ - 1].kind >= op.kind)
    throw InvalidArgument(std::string("post-op list: ") + kind_name(op.kind) + " after " +
                          kind_name(ops_[count_ - 1].kind) +
                          "; the order is dequantize, bias, activation, binary, store, each once");
  if (op.kind == PostOpKind::activation && op.activation == Activation::none)
    throw InvalidArgument("post-op list: an activation op needs an activation other than none");
  if (op.kind == PostOpKind::binary && op.binary == Operand::none)
    throw InvalidArgument("post-op list: a binary op needs add or multiply");
  ops_[count_++] = op;
  return *this;
}

bool PostOpList::has(PostOpKind kind) const {
  for (const PostOp& op : ops())
    if (op.kind == kind) return true;
  return false;
}

Activation PostOpList::activation() const {
  for (const PostOp& op : ops())
    if (op.kind == PostOpKind::activation) return op.activation;
  return Activation::none;
}

Operand PostOpList::operand() const {
  for (const PostOp& op : ops())
    if (op.kind == PostOpKind::binary) return op.binary;
  return Operand::none;
}

TileOutput PostOpList::output() const {
  for (const PostOp& op : ops())
    if (op.kind == PostOpKind::store) return op.output;
  return TileOutput::f32;
}

PostOpList PostOpList::before(PostOpKind kind) const {
  PostOpList part;
  for (const PostOp& op : ops())
    if (op.kind < kind) part.ops_[part.count_++] = op;
  return part;
}

PostOpList PostOpList::from(PostOpKind kind) const {
  PostOpList part;
  for (const PostOp& op : ops())
    if (op.kind >= kind) part.ops_[part.count_++] = op;
  return part;
}

std::string PostOpList::name() const {
  std::string s;
  for (const PostOp& op : ops()) {
    if (!s.empty()) s += ',';
    switch (op.kind) {
      case PostOpKind::activation:
        s += to_string(op.activation);
        break;
      case PostOpKind::binary:
        s += op.binary == Operand::add ? "add" : "mul";
        break;
      case PostOpKind::store:
        s += std::string("store:") + output_name(op.output);
        break;
      default:
        s += kind_name(op.kind);
    }
  }
  return s;
}

float apply_post_ops(const PostOpList& list, int32_t sum, const PostOpInputs& in) {
  const std::span<const PostOp> ops = list.ops();
  if (ops.empty() || ops[0].kind != PostOpKind::dequantize)
    throw InvalidArgument("post-ops on an int32 sum need a dequantize op first; the list is " +
                          list.name());
  const float v = static_cast<float>(sum - in.compensation) * in.x_scale;
  if (ops.size() > 1 && ops[1].kind == PostOpKind::bias)
    return finish(ops, 2, std::fma(v, in.w_scale, in.bias), in);
  return finish(ops, 1, v * in.w_scale, in);
}

float apply_post_ops(const PostOpList& list, float sum, const PostOpInputs& in) {
  if (list.has(PostOpKind::dequantize))
    throw InvalidArgument("post-ops with a dequantize op take an int32 sum; the list is " +
                          list.name());
  return finish(list.ops(), 0, sum, in);
}

void store_post_op(TileOutput output, float v, void* y, float inv_y_scale) {
  switch (output) {
    case TileOutput::f32:
      std::memcpy(y, &v, sizeof v);
      return;
    case TileOutput::s8:
      *static_cast<int8_t*>(y) = sparse::requantize(v, inv_y_scale);
      return;
    case TileOutput::bf16: {
      const uint16_t b = sparse::to_bf16(v);
      std::memcpy(y, &b, sizeof b);
      return;
    }
  }
}

}  // namespace sparq::jit
