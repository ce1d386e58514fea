#include "sparq/models/bert_encoder.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <type_traits>

#include "jit/cpu_features.hpp"
#include "jit/cpu_tuning.hpp"
#include "models/attention.hpp"
#include "models/layer_norm.hpp"
#include "sparq/error.hpp"
#include "sparse/checks.hpp"
#include "src/cuda_backend.hpp"
#include "src/safetensors.hpp"
#include "src/threading.hpp"

namespace sparq::models {

using sparse::require;

namespace {

struct Norm {
  std::vector<float> gamma, beta;
};

// In place, per row of `width`, rows spread over the arena's threads.
void layer_norm(tbb::task_arena& arena, float* x, int64_t rows, int64_t width, const Norm& n,
                double eps) {
  const float* gamma = n.gamma.data();
  const float* beta = n.beta.data();
  parallel_ranges(arena, rows, [=](int64_t r0, int64_t r1) {
    layer_norm_rows(x + r0 * width, r1 - r0, width, gamma, beta, eps);
  });
}

SparseLinear pack(const LinearWeights& w, const EncoderOptions& o, Activation act) {
  LinearOptions lo;
  lo.dtype = o.dtype;
  lo.pattern = o.pattern;
  lo.activation = act;
  lo.threads = o.threads;
  lo.pool = o.pool;
  return SparseLinear::pack(w.weight.data(), w.out, w.in, w.bias.data(), lo);
}

// Whether the CPU encoder runs its attention products in bf16 (EncoderOptions.attention): on AMX
// tiles where they run there, else on vdpbf16ps (attention_head_bf16 picks).
bool use_bf16_attention(const EncoderOptions& o, int64_t head_dim) {
  const bool native = bf16_attention_runs_natively(head_dim);
  switch (o.attention) {
    case AttentionPrecision::f32:
      return false;
    case AttentionPrecision::bf16:
      if (!native)
        throw NotSupported(
            "encoder: attention bf16 needs AVX512_BF16 (vdpbf16ps) with the float kernels at "
            "avx512, and an even head dimension of at most " +
            std::to_string(kMaxBf16HeadDim) + "; this CPU has: " + jit::cpu_features().names() +
            " (SPARQ_MAX_ISA caps it), head dimension " + std::to_string(head_dim) +
            ". Use attention f32 or automatic.");
      return true;
    case AttentionPrecision::automatic:
      return (o.dtype == DType::int8 || o.dtype == DType::bf16) && native &&
             (bf16_attention_runs_on_amx(head_dim) || jit::cpu_tuning().bf16_attention_products);
  }
  return false;
}

}  // namespace

struct BertEncoder::Impl {
  BertConfig config;
  std::vector<float> word, position, token_type;
  Norm embedding_norm;
  struct Layer {
    SparseLinear qkv, attention_out, intermediate, output;
    Norm attention_norm, output_norm;
  };
  std::vector<Layer> layers;
  tbb::task_arena* arena = nullptr;
  bool bf16_attention = false;
  // The attention runs on AMX tiles: the qkv projection writes bf16 (half the bytes, and no
  // per-head conversion; the same values as rounding its fp32 output).
  bool bf16_qkv = false;
  // EncoderOptions.device cuda: the whole forward pass runs here, and the CPU members stay empty.
  std::unique_ptr<gpu::DeviceEncoder> cuda;

  void validate(const EncoderInput& in) const {
    const BertConfig& c = config;
    require(in.batch > 0 && in.seq > 0, "encoder: batch and seq must be positive");
    require(in.seq <= c.max_position, [&] {
      return "encoder: seq " + std::to_string(in.seq) + " exceeds the model's " +
             std::to_string(c.max_position) + " positions";
    });
    require(static_cast<int64_t>(in.ids.size()) == in.batch * in.seq, [&] {
      return "encoder: " + std::to_string(in.ids.size()) + " ids for batch " +
             std::to_string(in.batch) + " x seq " + std::to_string(in.seq);
    });
    require(static_cast<int64_t>(in.lengths.size()) == in.batch,
            "encoder: one length per sequence expected");
    require(in.token_types.empty() || in.token_types.size() == in.ids.size(),
            "encoder: token_types must be empty or one per id");
    for (int64_t b = 0; b < in.batch; ++b)
      require(in.lengths[b] >= 1 && in.lengths[b] <= in.seq, [&] {
        return "encoder: length " + std::to_string(in.lengths[b]) + " of sequence " +
               std::to_string(b) + " is not in 1.." + std::to_string(in.seq);
      });
    for (size_t i = 0; i < in.ids.size(); ++i)
      require(in.ids[i] >= 0 && in.ids[i] < c.vocab_size, [&] {
        return "encoder: token id " + std::to_string(in.ids[i]) + " at " + std::to_string(i) +
               " is outside the vocabulary (" + std::to_string(c.vocab_size) + ")";
      });
    const int64_t types = std::max<int64_t>(1, c.type_vocab_size);
    for (size_t i = 0; i < in.token_types.size(); ++i)
      require(in.token_types[i] >= 0 && in.token_types[i] < types, [&] {
        return "encoder: token type " + std::to_string(in.token_types[i]) + " at " +
               std::to_string(i) + " is not in 0.." + std::to_string(types - 1);
      });
  }

  // Self-attention of one layer: qkv [tokens x 3H] (fp32, or bf16 where bf16_qkv) -> ctx
  // [tokens x H]; padded query rows zero.
  template <typename Qkv>
  void attention(const EncoderInput& in, const Qkv* qkv, float* ctx) const {
    const int64_t h = config.hidden_size, heads = config.num_heads, d = config.head_dim();
    parallel_ranges(*arena, in.batch * heads, [&](int64_t w0, int64_t w1) {
      thread_local std::vector<float> scratch;
      for (int64_t w = w0; w < w1; ++w) {
        const int64_t b = w / heads, head = w % heads, len = in.lengths[b];
        const Qkv* base = qkv + b * in.seq * 3 * h + head * d;
        float* out = ctx + b * in.seq * h + head * d;
        if constexpr (std::is_same_v<Qkv, uint16_t>)
          attention_head_bf16_amx(base, base + h, base + 2 * h, len, d, 3 * h, out, h, scratch);
        else
          (bf16_attention ? attention_head_bf16 : attention_head)(base, base + h, base + 2 * h, len,
                                                                  d, 3 * h, out, h, scratch);
        for (int64_t i = len; i < in.seq; ++i) std::fill_n(out + i * h, d, 0.0f);
      }
    });
  }
};

BertEncoder::BertEncoder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
BertEncoder::BertEncoder(BertEncoder&&) noexcept = default;
BertEncoder& BertEncoder::operator=(BertEncoder&&) noexcept = default;
BertEncoder::~BertEncoder() = default;

const BertConfig& BertEncoder::config() const { return impl_->config; }

BertEncoder BertEncoder::load(const std::string& dir, const EncoderOptions& options) {
  const auto config = BertConfig::from_file((std::filesystem::path(dir) / "config.json").string());
  const auto model = SafetensorsModel::open(dir);
  return build(config, load_bert_weights(model, config), options);
}

BertEncoder BertEncoder::build(const BertConfig& c, const BertWeights& w,
                               const EncoderOptions& options) {
  require(static_cast<int64_t>(w.layers.size()) == c.num_layers,
          "encoder: the weights' layer count differs from the config's");
  auto impl = std::make_unique<Impl>();
  impl->config = c;
  check_device_request(options.device, options.dtype, "encoder");
  if (options.device.kind == Device::Kind::cuda) {
    impl->cuda = cuda_backend_for(options.device).build_encoder(c, w, options);
    return BertEncoder(std::move(impl));
  }
  impl->word = w.word_embeddings;
  impl->position = w.position_embeddings;
  impl->token_type = w.token_type_embeddings;
  impl->embedding_norm = {w.embedding_norm.gamma, w.embedding_norm.beta};
  impl->arena = &arena_for(resolve_threads(options.threads), options.pool);
  impl->bf16_attention = use_bf16_attention(options, c.head_dim());
  impl->bf16_qkv = impl->bf16_attention && bf16_attention_runs_on_amx(c.head_dim());
  for (const BertLayerWeights& l : w.layers)
    impl->layers.push_back({pack(stacked_qkv(l), options, Activation::none),
                            pack(l.attention_out, options, Activation::none),
                            pack(l.intermediate, options, c.hidden_act),
                            pack(l.output, options, Activation::none),
                            {l.attention_norm.gamma, l.attention_norm.beta},
                            {l.output_norm.gamma, l.output_norm.beta}});
  return BertEncoder(std::move(impl));
}

namespace {

// Adds the time since the last mark to a profile field; does nothing without a profile.
class StageClock {
 public:
  explicit StageClock(ForwardProfile* profile) : profile_(profile) {
    if (profile_) last_ = std::chrono::steady_clock::now();
  }
  void mark(double ForwardProfile::*field) {
    if (!profile_) return;
    const auto now = std::chrono::steady_clock::now();
    profile_->*field += std::chrono::duration<double, std::milli>(now - last_).count();
    last_ = now;
  }

 private:
  ForwardProfile* profile_;
  std::chrono::steady_clock::time_point last_;
};

}  // namespace

std::vector<float> BertEncoder::forward(const EncoderInput& in, ForwardProfile* profile) const {
  const Impl& m = *impl_;
  m.validate(in);
  if (m.cuda) return m.cuda->forward(in, profile);
  StageClock clock(profile);
  const BertConfig& c = m.config;
  const int64_t h = c.hidden_size, tokens = in.batch * in.seq;
  std::vector<float> x(static_cast<size_t>(tokens * h));
  for (int64_t t = 0; t < tokens; ++t) {
    const int64_t pos = t % in.seq, id = in.ids[static_cast<size_t>(t)];
    const int64_t type = in.token_types.empty() ? 0 : in.token_types[static_cast<size_t>(t)];
    float* row = x.data() + t * h;
    for (int64_t i = 0; i < h; ++i) {
      float v =
          m.word[static_cast<size_t>(id * h + i)] + m.position[static_cast<size_t>(pos * h + i)];
      if (!m.token_type.empty()) v += m.token_type[static_cast<size_t>(type * h + i)];
      row[i] = v;
    }
  }
  layer_norm(*m.arena, x.data(), tokens, h, m.embedding_norm, c.layer_norm_eps);
  clock.mark(&ForwardProfile::embeddings);
  // Per calling thread, reused across calls: after the largest batch, only the returned hidden
  // states are allocated.
  thread_local std::vector<float> qkv, ctx, x1, inner;
  thread_local std::vector<uint16_t> qkv_bf16;
  if (m.bf16_qkv)
    qkv_bf16.resize(static_cast<size_t>(tokens * 3 * h));
  else
    qkv.resize(static_cast<size_t>(tokens * 3 * h));
  ctx.resize(x.size());
  x1.resize(x.size());
  inner.resize(static_cast<size_t>(tokens * c.intermediate_size));
  for (const Impl::Layer& l : m.layers) {
    if (m.bf16_qkv) {
      l.qkv.forward_bf16(x.data(), tokens, qkv_bf16.data());
      clock.mark(&ForwardProfile::qkv);
      m.attention(in, qkv_bf16.data(), ctx.data());
    } else {
      l.qkv.forward(x.data(), tokens, qkv.data());
      clock.mark(&ForwardProfile::qkv);
      m.attention(in, qkv.data(), ctx.data());
    }
    clock.mark(&ForwardProfile::attention);
    l.attention_out.forward(ctx.data(), tokens, x1.data(), x.data());  // + residual
    clock.mark(&ForwardProfile::attention_out);
    layer_norm(*m.arena, x1.data(), tokens, h, l.attention_norm, c.layer_norm_eps);
    clock.mark(&ForwardProfile::layer_norm);
    l.intermediate.forward(x1.data(), tokens, inner.data());  // activation fused
    clock.mark(&ForwardProfile::intermediate);
    l.output.forward(inner.data(), tokens, x.data(), x1.data());  // + residual
    clock.mark(&ForwardProfile::output);
    layer_norm(*m.arena, x.data(), tokens, h, l.output_norm, c.layer_norm_eps);
    clock.mark(&ForwardProfile::layer_norm);
  }
  for (int64_t b = 0; b < in.batch; ++b)  // padded positions carry nothing
    std::fill(x.begin() + (b * in.seq + in.lengths[b]) * h, x.begin() + (b + 1) * in.seq * h, 0.0f);
  return x;
}

std::vector<float> BertEncoder::embed(const EncoderInput& in, Pooling pooling) const {
  const auto x = forward(in);
  const int64_t h = impl_->config.hidden_size;
  std::vector<float> out(static_cast<size_t>(in.batch * h), 0.0f);
  for (int64_t b = 0; b < in.batch; ++b) {
    float* o = out.data() + b * h;
    if (pooling == Pooling::cls) {
      std::copy_n(x.data() + b * in.seq * h, h, o);
      continue;
    }
    for (int64_t t = 0; t < in.lengths[b]; ++t)
      for (int64_t i = 0; i < h; ++i) o[i] += x[static_cast<size_t>((b * in.seq + t) * h + i)];
    for (int64_t i = 0; i < h; ++i) o[i] /= static_cast<float>(in.lengths[b]);
  }
  return out;
}

std::vector<std::pair<std::string, LinearInfo>> BertEncoder::kernels() const {
  if (impl_->cuda) return impl_->cuda->kernels();
  const Impl::Layer& l = impl_->layers.front();
  return {{"query/key/value", l.qkv.info()},
          {"attention output", l.attention_out.info()},
          {"intermediate", l.intermediate.info()},
          {"output", l.output.info()}};
}

std::string BertEncoder::attention_kernel() const {
  if (impl_->cuda) return "cuda (batched cuBLAS products, 16-bit probabilities)";
  if (impl_->bf16_attention)
    return bf16_attention_runs_on_amx(impl_->config.head_dim()) ? "bf16 (amx_bf16 tiles)"
                                                                : "bf16 (vdpbf16ps, avx512_bf16)";
  const jit::Isa isa = jit::best_float_isa();
  return std::string("f32 (") + (isa >= jit::Isa::avx2 ? jit::isa_name(isa) : "portable") + ")";
}

}  // namespace sparq::models
