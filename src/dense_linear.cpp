#include "src/dense_linear.hpp"

#include <cstdint>
#include <cstring>
#include <string>

#include "sparq/error.hpp"
#include "sparse/bf16.hpp"
#include "sparse/checks.hpp"
#include "src/activation_quant.hpp"
#include "src/bf16_convert.hpp"

namespace sparq {

DenseLinear::DenseLinear(const LayerDescription& d)
    : out_(d.out),
      in_(d.in),
      dtype_(d.options.dtype),
      post_ops_(d.options.activation, d.options.operand),
      threads_(d.threads),
      arena_(&arena_for(d.pool())) {
  if (d.int8()) {
    w_s8_.assign(d.w_s8.begin(), d.w_s8.end());
    if (255 * 128 * d.in <= int64_t{INT32_MAX}) {
      w_shift_.assign(static_cast<size_t>(d.out), 0);
      for (int64_t o = 0; o < d.out; ++o)
        for (int64_t i = 0; i < d.in; ++i) w_shift_[o] += 128 * int32_t{w_s8_[o * d.in + i]};
    }
    w_scale_ = d.w_scale;
    dense_bias_ = d.bias ? std::vector<float>(d.bias, d.bias + d.out)
                         : std::vector<float>(static_cast<size_t>(d.out), 0.0f);
    const jit::Isa isa = jit::best_int8_isa();
    if (isa != jit::Isa::reference)
      for (int residual = 0; residual < 2; ++residual)
        for (jit::TileOutput output :
             {jit::TileOutput::f32, jit::TileOutput::s8, jit::TileOutput::bf16})
          row_epilogues_[residual][static_cast<int>(output)] =
              jit::row_epilogue({isa, post_ops_.activation, post_ops_.operand_for(residual == 1),
                                 output, false, !w_shift_.empty()});
    return;
  }
  w_f32_.assign(d.weight, d.weight + d.out * d.in);
  if (d.bias) bias_.assign(d.bias, d.bias + d.out);
}

std::string DenseLinear::name() const {
  if (dtype_ == DType::int8) return "onednn:int8-dense";
  return bf16_gemm() ? "onednn:bf16-dense" : "onednn:f32-dense";
}

int64_t DenseLinear::packed_bytes() const {
  // The plain weight's bytes (oneDNN's reordered copy takes about as many once it exists).
  if (dtype_ == DType::int8)
    return out_ * in_ +
           static_cast<int64_t>((w_scale_.size() + dense_bias_.size()) * sizeof(float));
  return static_cast<int64_t>((static_cast<size_t>(out_ * in_) + bias_.size()) * sizeof(float));
}

std::shared_ptr<const DnnlMatmul> DenseLinear::primitive(int64_t tokens) const {
  std::lock_guard lock(mutex_);
  for (auto it = primitives_.begin(); it != primitives_.end(); ++it)
    if (it->first == tokens) {
      primitives_.splice(primitives_.begin(), primitives_, it);  // most recently used first
      return primitives_.front().second;
    }
  const bool int8 = dtype_ == DType::int8;
  const size_t plain_bytes = static_cast<size_t>(out_ * in_) * (int8 ? 1 : sizeof(float));
  // Once the plain weight is released, a primitive that cannot share the reordered weights
  // reorders its own copy from them (DnnlMatmul, w null).
  const void* plain = plain_released_ ? nullptr
                      : int8          ? static_cast<const void*>(w_s8_.data())
                                      : w_f32_.data();
  std::shared_ptr<const DnnlMatmul> prim;
  if (int8)
    prim = std::make_shared<DnnlMatmul>(
        w_shift_.empty() ? DnnlMatmul::Kind::s8s8_s32 : DnnlMatmul::Kind::u8s8_s32, tokens, out_,
        in_, plain, nullptr, nullptr, Activation::none, threads_, &shared_weights_);
  else
    prim = std::make_shared<DnnlMatmul>(
        bf16_gemm() ? DnnlMatmul::Kind::bf16 : DnnlMatmul::Kind::f32, tokens, out_, in_, plain,
        nullptr, bias_.empty() ? nullptr : bias_.data(), post_ops_.activation, threads_,
        &shared_weights_);
  primitives_.emplace_front(tokens, prim);
  // bf16 GEMM weights come back rounded, so only int8 and fp32 ones are released.
  if (!plain_released_ && shared_weights_ && !bf16_gemm()) {
    std::vector<uint8_t> read_back(plain_bytes, 0);
    if (read_back_weights(*shared_weights_, !int8, out_, in_, read_back.data()) &&
        std::memcmp(read_back.data(), plain, plain_bytes) == 0) {
      AlignedVector<int8_t>().swap(w_s8_);
      AlignedVector<float>().swap(w_f32_);
      plain_released_ = true;
    }
  }
  if (primitives_.size() > kMaxPrimitives) primitives_.pop_back();
  return prim;
}

void DenseLinear::run(const float* x, int64_t tokens, void* y, const float* residual,
                      bool bf16_out) const {
  if (dtype_ == DType::int8) return LinearKernel::run(x, tokens, y, residual, bf16_out);
  const void* dense_x = x;
  if (bf16_gemm()) {
    thread_local std::vector<uint16_t> x_bf16;
    x_bf16.resize(static_cast<size_t>(tokens * in_));
    convert_to_bf16(x, x_bf16.data(), tokens * in_);
    dense_x = x_bf16.data();
  } else if (dtype_ == DType::bf16) {
    // bf16 semantics on oneDNN's f32 GEMM: the weights were rounded at pack time.
    thread_local std::vector<float> rounded;
    rounded.resize(static_cast<size_t>(tokens * in_));
    for (size_t i = 0; i < rounded.size(); ++i)
      rounded[i] = sparse::from_bf16(sparse::to_bf16(x[i]));
    dense_x = rounded.data();
  }
  // oneDNN writes fp32; bf16 output is converted afterwards (not fused on this path).
  thread_local std::vector<float> fp32_out;
  float* y32 = static_cast<float*>(y);
  if (bf16_out) {
    fp32_out.resize(static_cast<size_t>(tokens * out_));
    y32 = fp32_out.data();
  }
  primitive(tokens)->run(dense_x, y32);
  // The operand joins after oneDNN's bias and activation, on the layer's threads.
  if (residual) {
    const jit::Operand op = post_ops_.operand_for(true);
    parallel_ranges(*arena_, tokens, [&](int64_t t0, int64_t t1) {
      for (int64_t i = t0 * out_; i < t1 * out_; ++i)
        y32[i] = jit::combine(op, y32[i], residual[i]);
    });
  }
  if (bf16_out) convert_to_bf16(y32, static_cast<uint16_t*>(y), tokens * out_);
}

void DenseLinear::quantize(const float* x, int64_t tokens, QuantizedInput::Impl& q) const {
  if (dtype_ != DType::int8) return LinearKernel::quantize(x, tokens, q);
  sparse::require(x != nullptr, "forward: x must not be null");
  sparse::require(tokens > 0, [&] {
    return "forward: tokens must be positive, got " + std::to_string(tokens);
  });
  q.reserve(tokens * in_, tokens);
  auto* xq = reinterpret_cast<int8_t*>(q.x.data());
  float* scales = q.scales.data();
  // oneDNN's u8 path is its fast one (its s8 path adds a compensation pass): q + 128, whose
  // 128 * weight sums run() takes back out.
  auto* xu = reinterpret_cast<uint8_t*>(xq);
  parallel_ranges(*arena_, tokens, [&](int64_t t0, int64_t t1) {
    quantize_rows(x + t0 * in_, t1 - t0, in_, xq + t0 * in_, scales + t0);
    if (!w_shift_.empty())
      for (int64_t i = t0 * in_; i < t1 * in_; ++i) xu[i] ^= 0x80;
  });
  q.form = QuantizedInput::Impl::Form::row_major;
  q.tokens = tokens;
  q.in = in_;
}

bool DenseLinear::reads(const QuantizedInput::Impl& q) const {
  return dtype_ == DType::int8 && q.form == QuantizedInput::Impl::Form::row_major && q.in == in_;
}

void DenseLinear::run(const QuantizedInput::Impl& q, void* y, float y_scale, const float* residual,
                      bool bf16_out) const {
  if (dtype_ != DType::int8) return LinearKernel::run(q, y, y_scale, residual, bf16_out);
  sparse::require(reads(q),
                  "forward: the QuantizedInput was not made by this layer's quantize_input");
  sparse::require(y != nullptr, "forward: y must not be null");
  const jit::TileOutput output = y_scale > 0.0f ? jit::TileOutput::s8
                                 : bf16_out     ? jit::TileOutput::bf16
                                                : jit::TileOutput::f32;
  // An fp32 output has the sums' size: oneDNN writes them into y and the epilogue converts them
  // in place, so the call writes one [tokens x out] buffer instead of two (the separate one cost
  // the dense layer a fifth of its time against oneDNN's AMX GEMM on 3072 x 768). Not where the
  // residual is y itself: the sums would overwrite it before it is read.
  const int64_t count = q.tokens * out_;
  auto* y_floats = static_cast<float*>(y);
  const auto address = [](const float* p) { return reinterpret_cast<uintptr_t>(p); };
  const bool in_place = output == jit::TileOutput::f32 &&
                        (residual == nullptr || address(residual + count) <= address(y_floats) ||
                         address(y_floats + count) <= address(residual));
  thread_local std::vector<int32_t> acc_buffer;
  int32_t* acc = reinterpret_cast<int32_t*>(y);
  if (!in_place) {
    acc_buffer.resize(static_cast<size_t>(count));
    acc = acc_buffer.data();
  }
  primitive(q.tokens)->run(q.x.data(), acc);
  const jit::RowEpilogueKey key{jit::Isa::reference,
                                post_ops_.activation,
                                post_ops_.operand_for(residual != nullptr),
                                output,
                                false,
                                !w_shift_.empty()};
  const jit::RowEpilogue* kernel =
      row_epilogues_[residual != nullptr][static_cast<int>(output)].get();
  const int64_t y_elem = jit::output_bytes(output);
  const int32_t* acc_rows = acc;
  // u8 activations: the epilogue takes 128 x each row's weight sum back out of the sums.
  parallel_ranges(*arena_, q.tokens, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t)
      jit::apply_row_epilogue(kernel, key, acc_rows + t * out_, q.scales[t], w_scale_.data(),
                              dense_bias_.data(), residual ? residual + t * out_ : nullptr,
                              static_cast<uint8_t*>(y) + t * out_ * y_elem, out_,
                              y_scale > 0.0f ? 1.0f / y_scale : 0.0f, w_shift_.data());
  });
}

}  // namespace sparq
