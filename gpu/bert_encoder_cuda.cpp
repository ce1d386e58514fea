#include "gpu/bert_encoder_cuda.hpp"

#include <algorithm>
#include <cmath>
#include <span>
#include <string>
#include <vector>

#include "gpu/attention_gemm.hpp"
#include "gpu/context.hpp"
#include "gpu/device_buffer.hpp"
#include "gpu/elementwise.hpp"
#include "gpu/encoder_kernels.hpp"
#include "gpu/host_values.hpp"
#include "sparq/error.hpp"

namespace sparq::gpu {
namespace {

using models::BertConfig;
using models::BertWeights;
using models::EncoderInput;
using models::EncoderOptions;
using models::ForwardProfile;
using models::LayerNormWeights;
using models::LinearWeights;

// The embedding kernels index tables and rows with int; the launch grids take 2^31 - 1 blocks.
constexpr int64_t kMaxInt = 0x7fffffff;
// Batches whose attention scores and probabilities fit in this many bytes run attention on
// cuBLAS (tensor cores); larger ones on the attention kernel, which holds one block's scores in
// shared memory only.
constexpr int64_t kMaxGemmAttentionBytes = int64_t{1} << 30;

void check_count(size_t got, int64_t want, const std::string& what) {
  if (static_cast<int64_t>(got) != want)
    throw InvalidArgument("encoder on cuda: " + what + " has " + std::to_string(got) +
                          " values, expected " + std::to_string(want));
}

// The checks SparseLinear::pack makes for the CPU layers, plus the shapes the config implies:
// the backend's pack reads out * in weights and out biases without looking.
void check_linear(const LinearWeights& l, int64_t out, int64_t in, const std::string& what) {
  if (l.out != out || l.in != in)
    throw InvalidArgument("encoder on cuda: " + what + " is [" + std::to_string(l.out) + " x " +
                          std::to_string(l.in) + "], expected [" + std::to_string(out) + " x " +
                          std::to_string(in) + "] from the config");
  check_count(l.weight.size(), out * in, what + " weight");
  if (!l.bias.empty()) check_count(l.bias.size(), out, what + " bias");
  for (size_t i = 0; i < l.weight.size(); ++i)
    if (!std::isfinite(l.weight[i]))
      throw InvalidArgument("encoder on cuda: " + what + " weight[" +
                            std::to_string(static_cast<int64_t>(i) / in) + "][" +
                            std::to_string(static_cast<int64_t>(i) % in) + "] is not finite");
}

struct DeviceNorm {
  DeviceBuffer gamma, beta;
};

DeviceNorm upload_norm(const LayerNormWeights& n, int64_t hidden, const std::string& what) {
  check_count(n.gamma.size(), hidden, what + " gamma");
  check_count(n.beta.size(), hidden, what + " beta");
  return {upload(std::span<const float>(n.gamma)), upload(std::span<const float>(n.beta))};
}

class Stream {
 public:
  // A blocking stream: the linear kernels' first call at a new token count may set up plans with
  // synchronous calls on the legacy default stream, which must order against this one.
  Stream() { check_cuda(cudaStreamCreate(&stream_), "cudaStreamCreate"); }
  ~Stream() { cudaStreamDestroy(stream_); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return stream_; }

 private:
  cudaStream_t stream_ = nullptr;
};

// With a profile: an event on the stream at the start and at every mark, and after the forward's
// final wait each stage's GPU time (event to event) added to its field. Nothing waits, so the
// profiled forward runs as an unprofiled one does; a stage whose kernels the host launches more
// slowly than the GPU runs them is charged the GPU's wait too. Without a profile: nothing.
class StageClock {
 public:
  StageClock(ForwardProfile* profile, cudaStream_t stream) : profile_(profile), stream_(stream) {
    try {
      if (profile_) record();
    } catch (...) {  // no destructor runs for a constructor that throws
      for (cudaEvent_t e : events_)
        if (e) cudaEventDestroy(e);
      throw;
    }
  }
  StageClock(const StageClock&) = delete;
  StageClock& operator=(const StageClock&) = delete;
  ~StageClock() {
    for (cudaEvent_t e : events_)
      if (e) cudaEventDestroy(e);
  }
  void mark(double ForwardProfile::*field) {
    if (!profile_) return;
    record();
    fields_.push_back(field);
  }
  // Once the stream has been waited for.
  void add_to_profile() const {
    for (size_t i = 0; i < fields_.size(); ++i) {
      float ms = 0;
      check_cuda(cudaEventElapsedTime(&ms, events_[i], events_[i + 1]), "cudaEventElapsedTime");
      profile_->*fields_[i] += ms;
    }
  }

 private:
  void record() {
    events_.push_back(nullptr);
    check_cuda(cudaEventCreate(&events_.back()), "cudaEventCreate (profile)");
    check_cuda(cudaEventRecord(events_.back(), stream_), "cudaEventRecord (profile)");
  }
  ForwardProfile* profile_;
  cudaStream_t stream_;
  std::vector<cudaEvent_t> events_;
  std::vector<double ForwardProfile::*> fields_;
};

template <typename T>
void upload_async(const std::vector<T>& host, const StreamScratch& dst, cudaStream_t stream) {
  // From pageable memory: the call returns once `host` has been staged, so it may go away after.
  check_cuda(cudaMemcpyAsync(dst.get(), host.data(), host.size() * sizeof(T),
                             cudaMemcpyHostToDevice, stream),
             "cudaMemcpyAsync encoder input to device");
}

class CudaBertEncoder final : public DeviceEncoder {
 public:
  CudaBertEncoder(const Backend& backend, const BertConfig& c, const BertWeights& w,
                  const EncoderOptions& o)
      : device_(o.device.index), elem_(activation_elem(o.dtype)), config_(c) {
    const int64_t h = c.hidden_size, inter = c.intermediate_size;
    if (o.dtype != DType::f16 && o.dtype != DType::bf16 && o.dtype != DType::int8)
      throw NotSupported(std::string("encoder on ") + o.device.to_string() + ": dtype " +
                         to_string(o.dtype) + " is not supported; use f16, bf16 or int8");
    if (h <= 0 || c.num_heads <= 0 || h % c.num_heads != 0 || inter <= 0)
      throw InvalidArgument("encoder on cuda: hidden_size " + std::to_string(h) +
                            " must be a positive multiple of num_heads " +
                            std::to_string(c.num_heads) + ", intermediate_size " +
                            std::to_string(inter) + " positive");
    if (c.head_dim() > kMaxAttentionHeadDim)
      throw NotSupported("encoder on cuda: head_dim " + std::to_string(c.head_dim()) +
                         " is larger than the attention kernel's " +
                         std::to_string(kMaxAttentionHeadDim));
    if (h > kMaxInt / 3 || inter > kMaxInt || c.vocab_size > kMaxInt / h)
      throw NotSupported("encoder on cuda: hidden_size " + std::to_string(h) + " or vocab_size " +
                         std::to_string(c.vocab_size) + " too large for 32-bit indexing");
    if (static_cast<int64_t>(w.layers.size()) != c.num_layers)
      throw InvalidArgument("encoder on cuda: " + std::to_string(w.layers.size()) +
                            " layers of weights, the config has " + std::to_string(c.num_layers));
    check_count(w.word_embeddings.size(), c.vocab_size * h, "word_embeddings");
    check_count(w.position_embeddings.size(), c.max_position * h, "position_embeddings");
    if (!w.token_type_embeddings.empty())
      check_count(w.token_type_embeddings.size(), std::max<int64_t>(1, c.type_vocab_size) * h,
                  "token_type_embeddings");

    DeviceGuard guard(device_);
    int optin = 0;
    check_cuda(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device_),
               "cudaDeviceGetAttribute (shared memory per block)");
    max_shared_bytes_ = optin;
    word_ = upload(std::span<const float>(w.word_embeddings));
    position_ = upload(std::span<const float>(w.position_embeddings));
    if (!w.token_type_embeddings.empty())
      token_type_ = upload(std::span<const float>(w.token_type_embeddings));
    embedding_norm_ = upload_norm(w.embedding_norm, h, "embedding LayerNorm");

    auto pack = [&](const LinearWeights& l, Activation act) {
      LinearOptions lo;
      lo.dtype = o.dtype;
      lo.pattern = o.pattern;
      lo.activation = act;
      lo.threads = 0;
      lo.device = o.device;
      return backend.pack(l.weight.data(), l.out, l.in, l.bias.empty() ? nullptr : l.bias.data(),
                          lo);
    };
    for (size_t i = 0; i < w.layers.size(); ++i) {
      const models::BertLayerWeights& l = w.layers[i];
      const std::string at = "layer " + std::to_string(i) + " ";
      check_linear(l.query, h, h, at + "query");
      check_linear(l.key, h, h, at + "key");
      check_linear(l.value, h, h, at + "value");
      check_linear(l.attention_out, h, h, at + "attention output");
      check_linear(l.intermediate, inter, h, at + "intermediate");
      check_linear(l.output, h, inter, at + "output");
      const LinearWeights qkv = models::stacked_qkv(l);
      if (!qkv.bias.empty()) check_count(qkv.bias.size(), 3 * h, at + "query/key/value biases");
      Layer layer;
      layer.qkv = pack(qkv, Activation::none);
      layer.attention_out = pack(l.attention_out, Activation::none);
      layer.intermediate = pack(l.intermediate, c.hidden_act);
      layer.output = pack(l.output, Activation::none);
      layer.attention_norm = upload_norm(l.attention_norm, h, at + "attention LayerNorm");
      layer.output_norm = upload_norm(l.output_norm, h, at + "output LayerNorm");
      layers_.push_back(std::move(layer));
    }
    // The tables were uploaded from pageable memory: make sure they have landed before a
    // forward on another stream reads them.
    check_cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize (end of encoder build)");
  }

  std::vector<float> forward(const EncoderInput& in, ForwardProfile* profile) const override {
    const BertConfig& c = config_;
    const int64_t h = c.hidden_size, inter = c.intermediate_size, tokens = in.batch * in.seq;
    const float eps = static_cast<float>(c.layer_norm_eps);
    // Limits the CPU encoder does not have; BertEncoder validated everything else.
    const bool on_tensor_cores =
        gemm_attention_supports(c.head_dim()) &&
        gemm_attention_scratch_bytes(in.batch, in.seq, c.num_heads) <= kMaxGemmAttentionBytes &&
        in.seq <= kMaxInt;
    const int64_t shared = attention_shared_bytes(in.seq, c.head_dim());
    if ((!on_tensor_cores && shared > max_shared_bytes_) || in.batch > 65535 || tokens > kMaxInt)
      throw NotSupported("encoder on cuda:" + std::to_string(device_) + ": seq " +
                         std::to_string(in.seq) + " needs " + std::to_string(shared) +
                         " bytes of shared memory for attention (head_dim " +
                         std::to_string(c.head_dim()) + "), the GPU has " +
                         std::to_string(max_shared_bytes_) + " per block; batch " +
                         std::to_string(in.batch) + " must be <= 65535 and batch x seq < 2^31");

    DeviceGuard guard(device_);
    const Stream stream_owner;
    const cudaStream_t stream = stream_owner.get();
    const auto count = static_cast<size_t>(tokens);
    const bool types = !in.token_types.empty() && token_type_.get() != nullptr;
    std::vector<int32_t> lengths(static_cast<size_t>(in.batch));
    for (size_t b = 0; b < lengths.size(); ++b) lengths[b] = static_cast<int32_t>(in.lengths[b]);
    const StreamScratch ids_d(count * sizeof(int32_t), stream);
    const StreamScratch types_d(types ? count * sizeof(int32_t) : 0, stream);
    const StreamScratch lengths_d(lengths.size() * sizeof(int32_t), stream);
    upload_async(in.ids, ids_d, stream);
    if (types) upload_async(in.token_types, types_d, stream);
    upload_async(lengths, lengths_d, stream);

    const size_t act = 2;  // bytes of a 16-bit activation
    const StreamScratch x(count * static_cast<size_t>(h) * act, stream);
    const StreamScratch qkv(count * static_cast<size_t>(3 * h) * act, stream);
    const StreamScratch ctx(count * static_cast<size_t>(h) * act, stream);
    const StreamScratch x1(count * static_cast<size_t>(h) * act, stream);
    const StreamScratch inner(count * static_cast<size_t>(inter) * act, stream);

    StageClock clock(profile, stream);
    embed_layer_norm(ids_d.get<int32_t>(), types ? types_d.get<int32_t>() : nullptr,
                     word_.get<float>(), position_.get<float>(), token_type_.get<float>(),
                     embedding_norm_.gamma.get<float>(), embedding_norm_.beta.get<float>(), eps,
                     tokens, in.seq, h, x.get(), elem_, stream);
    clock.mark(&ForwardProfile::embeddings);
    for (const Layer& l : layers_) {
      l.qkv->forward_device(x.get(), tokens, qkv.get(), nullptr, stream);
      clock.mark(&ForwardProfile::qkv);
      if (on_tensor_cores)
        gemm_attention(device_, qkv.get(), lengths_d.get<int32_t>(), in.lengths.data(), in.batch,
                       in.seq, c.num_heads, c.head_dim(), ctx.get(), elem_, stream);
      else
        attention(qkv.get(), lengths_d.get<int32_t>(), in.batch, in.seq, c.num_heads, c.head_dim(),
                  ctx.get(), elem_, max_shared_bytes_, stream);
      clock.mark(&ForwardProfile::attention);
      l.attention_out->forward_device(ctx.get(), tokens, x1.get(), x.get(), stream);  // + residual
      clock.mark(&ForwardProfile::attention_out);
      layer_norm(x1.get(), l.attention_norm.gamma.get<float>(), l.attention_norm.beta.get<float>(),
                 eps, tokens, h, elem_, stream);
      clock.mark(&ForwardProfile::layer_norm);
      l.intermediate->forward_device(x1.get(), tokens, inner.get(), nullptr, stream);
      clock.mark(&ForwardProfile::intermediate);
      l.output->forward_device(inner.get(), tokens, x.get(), x1.get(), stream);  // + residual
      clock.mark(&ForwardProfile::output);
      layer_norm(x.get(), l.output_norm.gamma.get<float>(), l.output_norm.beta.get<float>(), eps,
                 tokens, h, elem_, stream);
      clock.mark(&ForwardProfile::layer_norm);
    }

    const size_t values = count * static_cast<size_t>(h);
    const StreamScratch out(values * sizeof(float), stream);
    convert_to_f32(x.get(), elem_, out.get<float>(), static_cast<int64_t>(values), stream);
    std::vector<float> result(values);
    check_cuda(cudaMemcpyAsync(result.data(), out.get(), values * sizeof(float),
                               cudaMemcpyDeviceToHost, stream),
               "cudaMemcpyAsync hidden states to host");
    check_cuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize (encoder forward)");
    clock.add_to_profile();
    for (int64_t b = 0; b < in.batch; ++b)  // padded positions carry nothing
      std::fill(result.begin() + (b * in.seq + in.lengths[b]) * h,
                result.begin() + (b + 1) * in.seq * h, 0.0f);
    return result;
  }

  std::vector<std::pair<std::string, LinearInfo>> kernels() const override {
    if (layers_.empty()) return {};
    const Layer& l = layers_.front();
    return {{"query/key/value", l.qkv->info()},
            {"attention output", l.attention_out->info()},
            {"intermediate", l.intermediate->info()},
            {"output", l.output->info()}};
  }

 private:
  struct Layer {
    std::unique_ptr<DeviceLinear> qkv, attention_out, intermediate, output;
    DeviceNorm attention_norm, output_norm;
  };

  int device_;
  Elem elem_;
  BertConfig config_;
  int64_t max_shared_bytes_ = 0;
  DeviceBuffer word_, position_, token_type_;  // fp32 tables; token_type_ empty for DistilBERT
  DeviceNorm embedding_norm_;
  std::vector<Layer> layers_;
};

}  // namespace

std::unique_ptr<DeviceEncoder> make_cuda_bert_encoder(const Backend& backend,
                                                      const models::BertConfig& config,
                                                      const models::BertWeights& weights,
                                                      const models::EncoderOptions& options) {
  return std::make_unique<CudaBertEncoder>(backend, config, weights, options);
}

}  // namespace sparq::gpu
