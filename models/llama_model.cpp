#include "sparq/models/llama_model.hpp"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <optional>

#include "models/cached_attention.hpp"
#include "models/llama_ops.hpp"
#include "models/prefill_attention.hpp"
#include "models/rope.hpp"
#include "sparq/error.hpp"
#include "sparse/checks.hpp"
#include "src/gguf.hpp"
#include "src/kernel_thresholds.hpp"
#include "src/safetensors.hpp"
#include "src/threading.hpp"

namespace sparq::models {

using sparse::require;

namespace {

SparseLinear pack_rows(const float* weight, int64_t out, int64_t in, const float* bias,
                       const DecoderOptions& options, const Pattern& pattern,
                       Activation activation = Activation::none, OperandOp operand = OperandOp::add,
                       float input_threshold = 0.0f) {
  LinearOptions o;
  o.input_threshold = input_threshold;
  o.expected_input_sparsity = input_threshold > 0.0f ? options.expected_input_sparsity : 0.0f;
  o.activation = activation;
  o.operand = operand;
  o.dtype = options.dtype;
  o.pattern = pattern;
  o.threads = options.threads;
  o.pool = options.pool;
  return SparseLinear::pack(weight, out, in, bias, o);
}

SparseLinear pack(const LinearWeights& w, const DecoderOptions& options, const Pattern& pattern,
                  Activation activation = Activation::none, OperandOp operand = OperandOp::add,
                  float input_threshold = 0.0f) {
  // Only architectures with biases (Qwen2's q, k, v) give non-zero ones.
  const bool biased = std::any_of(w.bias.begin(), w.bias.end(), [](float b) { return b != 0.0f; });
  return pack_rows(w.weight.data(), w.out, w.in, biased ? w.bias.data() : nullptr, options, pattern,
                   activation, operand, input_threshold);
}

// Rows of several [out x in] weights stacked into one layer: one pass over the input.
LinearWeights stack(std::initializer_list<const LinearWeights*> parts) {
  LinearWeights s;
  s.in = (*parts.begin())->in;
  for (const LinearWeights* p : parts) {
    s.out += p->out;
    s.weight.insert(s.weight.end(), p->weight.begin(), p->weight.end());
    if (p->bias.empty())
      s.bias.insert(s.bias.end(), static_cast<size_t>(p->out), 0.0f);
    else
      s.bias.insert(s.bias.end(), p->bias.begin(), p->bias.end());
  }
  return s;
}

}  // namespace

struct LlamaModel::Impl {
  LlamaConfig config;
  std::vector<float> embed, final_norm;
  struct Layer {
    // The MLP's gate carries SwiGLU in its epilogue: silu(x gate^T) * up, with up (computed
    // first) as its multiplied operand.
    SparseLinear qkv, o, up, gate, down;
    std::vector<float> attention_norm, mlp_norm;
  };
  std::vector<Layer> layers;
  std::optional<SparseLinear> head;  // set by build
  std::vector<float> inv_freq;       // [head_dim / 2]
  tbb::task_arena* arena = nullptr;
};

struct LlamaSession::Impl {
  std::shared_ptr<const LlamaModel::Impl> model;
  int64_t capacity = 0, position = 0;
  // Per layer: keys and values [kv_heads x slots x head_dim] (each head's positions contiguous,
  // so that the attention streams them); keys stored rotated. A layer whose sliding window is
  // much shorter than the session keeps a rolling cache: position p in ring slot p % ring, written
  // twice (slots s and s + ring of 2 * ring), so that any window of positions is one contiguous
  // run of slots for the attention. ring = window + kRingSlack, and forward feeds such a session
  // at most kRingSlack tokens per step, so a step's new keys never overwrite a key one of its
  // tokens still attends to.
  std::vector<std::vector<float>> keys, values;
  std::vector<int64_t> ring;  // per layer: the ring size, or 0 (every position has its slot)
  static constexpr int64_t kRingSlack = 256;
  bool rolling() const {
    return std::any_of(ring.begin(), ring.end(), [](int64_t r) { return r > 0; });
  }
  RopeTable rope;  // positions 0..capacity-1
  // Attention scores: per chunk of (token, key/value head) items (a chunk per thread), one row of
  // `capacity` for each query head of a group.
  int64_t chunks = 1;
  std::vector<float> scores;
  // A prompt's keys transposed per key/value head ([kv_heads][head_dim][width]) for
  // prefill_attention_head.
  std::vector<float> keys_t;
  std::vector<float> x, xn, qkv, ctx, x1, up, act;
  LlamaSession::InputObserver observer;

  std::vector<float> forward(const std::vector<int32_t>& ids, bool all_logits);
  // The logits a step computes: none (a long prompt's steps before its last), the last
  // position's, or every position's.
  enum class Logits { none, last, all };
  std::vector<float> forward_step(const std::vector<int32_t>& ids, Logits logits);
  void attention(int64_t tokens, int64_t layer);
  // The slot of position pos's key and value in layer l (the first of its two in a ring).
  int64_t slot(int64_t l, int64_t pos) const {
    const int64_t r = ring[static_cast<size_t>(l)];
    return r > 0 ? pos % r : pos;
  }
  // Rows per key/value head in layer l.
  int64_t slots(int64_t l) const {
    const int64_t r = ring[static_cast<size_t>(l)];
    return r > 0 ? 2 * r : capacity;
  }
};

LlamaSession::LlamaSession(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LlamaSession::LlamaSession(LlamaSession&&) noexcept = default;
LlamaSession& LlamaSession::operator=(LlamaSession&&) noexcept = default;
LlamaSession::~LlamaSession() = default;
int64_t LlamaSession::position() const { return impl_->position; }
int64_t LlamaSession::capacity() const { return impl_->capacity; }

void LlamaSession::observe_inputs(InputObserver observer) { impl_->observer = std::move(observer); }

std::vector<float> LlamaSession::forward(const std::vector<int32_t>& ids, bool all_logits) {
  return impl_->forward(ids, all_logits);
}

// Causal grouped-query attention of the `tokens` new positions over the cache (or its last
// sliding_window positions in a sliding layer).
void LlamaSession::Impl::attention(int64_t tokens, int64_t layer) {
  const LlamaConfig& c = model->config;
  const int64_t d = c.head_dim, heads = c.num_heads, kv_heads = c.num_kv_heads;
  const int64_t group = heads / kv_heads, row = (heads + 2 * kv_heads) * d;
  const int64_t first = position;  // absolute position of the first new token
  const int64_t window = c.layer_slides(layer) ? c.sliding_window : 0;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  const float* k_cache = keys[static_cast<size_t>(layer)].data();
  const float* v_cache = values[static_cast<size_t>(layer)].data();
  const int64_t rows = slots(layer);
  float* out = ctx.data();
  const float* q_all = qkv.data();
  // A prompt whose tokens all see every cached position from 0 (no ring, no window cutting in):
  // per query head on register tiles, each key transposed once for the whole prompt.
  const int64_t keys_seen = first + tokens;
  if (tokens > kDecodeTokens && ring[static_cast<size_t>(layer)] == 0 &&
      (window == 0 || window >= keys_seen) && prefill_attention_available(d)) {
    const int64_t width = (keys_seen + 7) / 8 * 8;
    keys_t.resize(static_cast<size_t>(kv_heads * d * width));
    float* kt = keys_t.data();
    parallel_ranges(*model->arena, kv_heads, [=](int64_t g0, int64_t g1) {
      for (int64_t g = g0; g < g1; ++g)
        transpose_keys(k_cache + g * rows * d, keys_seen, d, d, kt + g * d * width, width);
    });
    parallel_ranges(*model->arena, heads, [=](int64_t h0, int64_t h1) {
      thread_local std::vector<float> scratch;
      for (int64_t h = h0; h < h1; ++h) {
        const int64_t g = h / group;
        prefill_attention_head(q_all + h * d, row, kt + g * d * width, width,
                               v_cache + g * rows * d, first, tokens, d, scale, out + h * d,
                               heads * d, scratch);
      }
    });
    return;
  }
  // One chunk of (token, key/value head) items per thread, chunk k owning scores rows
  // [k * group, (k + 1) * group); the items are dealt out in turn because a causal item's cost
  // grows with its token.
  const int64_t items = tokens * kv_heads, n = std::min(chunks, items), cap = capacity;
  const Impl* self = this;
  float* score_rows = scores.data();
  parallel_ranges(*model->arena, n, [=](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k)
      for (int64_t w = k; w < items; w += n) {
        const int64_t t = w / kv_heads, kvh = w % kv_heads, end = first + t + 1;
        // A sliding window keeps the last `window` positions (the token's own included).
        const int64_t begin = window > 0 ? std::max<int64_t>(0, end - window) : 0;
        const int64_t at = kvh * rows + self->slot(layer, begin);
        cached_attention(q_all + t * row + kvh * group * d, group, k_cache + at * d,
                         v_cache + at * d, end - begin, d, d, scale, score_rows + k * group * cap,
                         out + t * heads * d + kvh * group * d);
      }
  });
}

std::vector<float> LlamaSession::Impl::forward(const std::vector<int32_t>& ids, bool all_logits) {
  const Logits wanted = all_logits ? Logits::all : Logits::last;
  if (!rolling() || static_cast<int64_t>(ids.size()) <= kRingSlack)
    return forward_step(ids, wanted);
  require(position + static_cast<int64_t>(ids.size()) <= capacity, [&] {
    return "llama: " + std::to_string(position) + " cached + " + std::to_string(ids.size()) +
           " new tokens exceed the session's capacity of " + std::to_string(capacity);
  });
  std::vector<float> logits;
  for (size_t i = 0; i < ids.size(); i += kRingSlack) {
    const size_t e = std::min(ids.size(), i + kRingSlack);
    auto part = forward_step(std::vector<int32_t>(ids.begin() + static_cast<std::ptrdiff_t>(i),
                                                  ids.begin() + static_cast<std::ptrdiff_t>(e)),
                             e == ids.size() || all_logits ? wanted : Logits::none);
    logits.insert(logits.end(), part.begin(), part.end());
  }
  return logits;
}

std::vector<float> LlamaSession::Impl::forward_step(const std::vector<int32_t>& ids,
                                                    Logits wanted) {
  const LlamaModel::Impl& m = *model;
  const LlamaConfig& c = m.config;
  const auto tokens = static_cast<int64_t>(ids.size());
  require(tokens > 0, "llama: forward needs at least one token");
  require(position + tokens <= capacity, [&] {
    return "llama: " + std::to_string(position) + " cached + " + std::to_string(tokens) +
           " new tokens exceed the session's capacity of " + std::to_string(capacity);
  });
  for (size_t i = 0; i < ids.size(); ++i)
    require(ids[i] >= 0 && ids[i] < c.vocab_size, [&] {
      return "llama: token id " + std::to_string(ids[i]) + " at " + std::to_string(i) +
             " is outside the vocabulary (" + std::to_string(c.vocab_size) + ")";
    });
  const int64_t h = c.hidden_size, d = c.head_dim, heads = c.num_heads, kv = c.num_kv_heads;
  const int64_t row = (heads + 2 * kv) * d, inter = c.intermediate_size;
  x.resize(static_cast<size_t>(tokens * h));
  xn.resize(x.size());
  x1.resize(x.size());
  qkv.resize(static_cast<size_t>(tokens * row));
  ctx.resize(static_cast<size_t>(tokens * heads * d));
  up.resize(static_cast<size_t>(tokens * inter));
  act.resize(static_cast<size_t>(tokens * inter));
  for (int64_t t = 0; t < tokens; ++t)
    std::copy_n(m.embed.data() + ids[static_cast<size_t>(t)] * h, h, x.data() + t * h);

  // RMSNorm of token rows, split over the model's threads for prompts.
  auto norm = [&](const float* in, int64_t n, int64_t width, const std::vector<float>& w,
                  float* out) {
    parallel_ranges(*m.arena, n, [&](int64_t t0, int64_t t1) {
      rms_norm_rows(in + t0 * width, t1 - t0, width, w.data(), c.rms_norm_eps, out + t0 * width);
    });
  };
  auto observe = [&](size_t l, ProjectionInput p, const std::vector<float>& in, int64_t width) {
    if (observer) observer(static_cast<int64_t>(l), p, in.data(), tokens, width);
  };
  for (size_t l = 0; l < m.layers.size(); ++l) {
    const LlamaModel::Impl::Layer& layer = m.layers[l];
    norm(x.data(), tokens, h, layer.attention_norm, xn.data());
    observe(l, ProjectionInput::qkv, xn, h);
    layer.qkv.forward(xn.data(), tokens, qkv.data());
    float* k_cache = keys[l].data();
    float* v_cache = values[l].data();
    const int64_t rows = slots(static_cast<int64_t>(l)), copy_step = ring[l] > 0 ? ring[l] : rows;
    for (int64_t t = 0; t < tokens; ++t) {
      float* r = qkv.data() + t * row;
      const int64_t pos = position + t;
      for (int64_t hh = 0; hh < heads + kv; ++hh) rope.apply(r + hh * d, pos);  // queries, keys
      const int64_t s = slot(static_cast<int64_t>(l), pos);
      for (int64_t g = 0; g < kv; ++g)
        for (int64_t copy = s; copy < rows; copy += copy_step) {
          std::copy_n(r + (heads + g) * d, d, k_cache + (g * rows + copy) * d);
          std::copy_n(r + (heads + kv + g) * d, d, v_cache + (g * rows + copy) * d);
        }
    }
    attention(tokens, static_cast<int64_t>(l));
    observe(l, ProjectionInput::o, ctx, heads * d);
    layer.o.forward(ctx.data(), tokens, x1.data(), x.data());  // + residual
    norm(x1.data(), tokens, h, layer.mlp_norm, xn.data());
    observe(l, ProjectionInput::gate_up, xn, h);
    // SwiGLU: up first, then the gate's epilogue computes silu(x gate^T) * up into act.
    layer.up.forward(xn.data(), tokens, up.data());
    layer.gate.forward(xn.data(), tokens, act.data(), up.data());
    observe(l, ProjectionInput::down, act, inter);
    layer.down.forward(act.data(), tokens, x.data(), x1.data());  // + residual
  }
  position += tokens;
  if (wanted == Logits::none) return {};
  const int64_t first = wanted == Logits::all ? 0 : tokens - 1, rows = tokens - first;
  norm(x.data() + first * h, rows, h, m.final_norm, xn.data());
  std::vector<float> logits(static_cast<size_t>(rows * c.vocab_size));
  m.head->forward(xn.data(), rows, logits.data());
  return logits;
}

LlamaModel::LlamaModel(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
LlamaModel::LlamaModel(LlamaModel&&) noexcept = default;
LlamaModel& LlamaModel::operator=(LlamaModel&&) noexcept = default;
LlamaModel::~LlamaModel() = default;

const LlamaConfig& LlamaModel::config() const { return impl_->config; }

LlamaModel LlamaModel::load(const std::string& path, const DecoderOptions& options,
                            const Pattern& prune, double sparsity) {
  if (std::filesystem::is_regular_file(path)) {  // a GGUF file
    const auto file = GgufFile::open(path);
    const auto config = llama_config_from_gguf(file);
    return build(config, llama_weight_source(file, config), options, prune, sparsity);
  }
  const auto config =
      LlamaConfig::from_file((std::filesystem::path(path) / "config.json").string());
  const auto model = SafetensorsModel::open(path);
  return build(config, llama_weight_source(model, config), options, prune, sparsity);
}

LlamaModel LlamaModel::build(const LlamaConfig& c, const LlamaWeights& w,
                             const DecoderOptions& options) {
  require(static_cast<int64_t>(w.layers.size()) == c.num_layers,
          "llama: the weights' layer count differs from the config's");
  LlamaWeightSource source;
  source.embed = [&w] { return w.embed; };
  source.final_norm = [&w] { return w.final_norm; };
  source.layer = [&w](int64_t n) { return w.layers[static_cast<size_t>(n)]; };
  source.lm_head = [&w] { return w.lm_head; };
  return build(c, source, options, Pattern::dense(), 0.0);
}

LlamaModel LlamaModel::build(const LlamaConfig& c, const LlamaWeightSource& source,
                             const DecoderOptions& options, const Pattern& prune, double sparsity) {
  auto impl = std::make_unique<Impl>();
  impl->config = c;
  impl->embed = source.embed();
  impl->final_norm = source.final_norm();
  require(static_cast<int64_t>(impl->embed.size()) == c.vocab_size * c.hidden_size &&
              static_cast<int64_t>(impl->final_norm.size()) == c.hidden_size,
          "llama: the embedding or final norm size differs from the config's");
  impl->arena = &arena_for(resolve_threads(options.threads), options.pool);
  impl->inv_freq = rope_inverse_frequencies(c);
  require(options.input_thresholds.empty() ||
              static_cast<int64_t>(options.input_thresholds.size()) == c.num_layers,
          [&] {
            return "llama: DecoderOptions::input_thresholds holds " +
                   std::to_string(options.input_thresholds.size()) +
                   " layers' thresholds; the model has " + std::to_string(c.num_layers) +
                   " layers (or leave it empty)";
          });
  // Layers are read, pruned and packed side by side on the model's threads (quantizing, pruning
  // checks and packing are mostly single-threaded per matrix, and a billion-weight model
  // otherwise takes minutes); each layer's fp32 weights are gone once it is packed, so loading
  // holds the packed model plus about one layer's fp32 weights per thread.
  std::vector<std::optional<Impl::Layer>> packed(static_cast<size_t>(c.num_layers));
  impl->arena->execute([&] {
    tbb::parallel_for(int64_t{0}, c.num_layers, [&](int64_t n) {
      LlamaLayerWeights l = source.layer(n);
      require(static_cast<int64_t>(l.attention_norm.size()) == c.hidden_size &&
                  static_cast<int64_t>(l.mlp_norm.size()) == c.hidden_size,
              "llama: a layer's norm size differs from the config's hidden size");
      prune_projections(l, prune, sparsity);
      const LayerInputThresholds t = options.input_thresholds.empty()
                                         ? LayerInputThresholds{}
                                         : options.input_thresholds[static_cast<size_t>(n)];
      const Activation none = Activation::none;
      const OperandOp add = OperandOp::add;
      packed[static_cast<size_t>(n)].emplace(
          Impl::Layer{pack(stack({&l.q, &l.k, &l.v}), options, options.pattern, none, add,
                           t[ProjectionInput::qkv]),
                      pack(l.o, options, options.pattern, none, add, t[ProjectionInput::o]),
                      pack(l.up, options, options.pattern, none, add, t[ProjectionInput::gate_up]),
                      pack(l.gate, options, options.pattern, Activation::silu, OperandOp::multiply,
                           t[ProjectionInput::gate_up]),
                      pack(l.down, options, options.pattern, none, add, t[ProjectionInput::down]),
                      std::move(l.attention_norm), std::move(l.mlp_norm)});
    });
  });
  for (auto& layer : packed) impl->layers.push_back(std::move(*layer));
  // Dense, in the layers' dtype: an fp32 head would stream 4x the bytes of an int8 one per
  // generated token. A head tied to the embeddings is packed from them in place (a copy would
  // add the embeddings' size to the load's peak: 1 GB for a 128 K x 2048 vocabulary).
  const LinearWeights head = source.lm_head();
  if (head.weight.empty())
    impl->head.emplace(pack_rows(impl->embed.data(), c.vocab_size, c.hidden_size, nullptr, options,
                                 Pattern::dense()));
  else
    impl->head.emplace(pack(head, options, Pattern::dense()));
  return LlamaModel(std::move(impl));
}

LlamaSession LlamaModel::start(int64_t max_tokens) const {
  const LlamaConfig& c = impl_->config;
  require(max_tokens > 0 && max_tokens <= c.max_position, [&] {
    return "llama: a session of " + std::to_string(max_tokens) + " tokens (1.." +
           std::to_string(c.max_position) + " expected)";
  });
  auto s = std::make_unique<LlamaSession::Impl>();
  s->model = impl_;
  s->capacity = max_tokens;
  for (int64_t l = 0; l < c.num_layers; ++l) {
    // A rolling cache where it holds fewer slots than the session has positions.
    const int64_t ring = c.layer_slides(l) ? c.sliding_window + LlamaSession::Impl::kRingSlack : 0;
    const bool rolls = ring > 0 && 2 * ring < max_tokens;
    s->ring.push_back(rolls ? ring : 0);
    const auto cache = static_cast<size_t>(s->slots(l) * c.num_kv_heads * c.head_dim);
    s->keys.emplace_back(cache);
    s->values.emplace_back(cache);
  }
  s->rope = RopeTable(impl_->inv_freq, max_tokens);
  s->chunks = impl_->arena->max_concurrency();
  s->scores.resize(static_cast<size_t>(s->chunks * (c.num_heads / c.num_kv_heads) * max_tokens));
  return LlamaSession(std::move(s));
}

int64_t LlamaModel::packed_bytes() const {
  const Impl& m = *impl_;
  auto floats = [](const std::vector<float>& v) { return static_cast<int64_t>(v.size() * 4); };
  int64_t total =
      floats(m.embed) + floats(m.final_norm) + floats(m.inv_freq) + m.head->info().packed_bytes;
  for (const Impl::Layer& l : m.layers)
    total += l.qkv.info().packed_bytes + l.o.info().packed_bytes + l.up.info().packed_bytes +
             l.gate.info().packed_bytes + l.down.info().packed_bytes + floats(l.attention_norm) +
             floats(l.mlp_norm);
  return total;
}

std::vector<std::pair<std::string, LinearInfo>> LlamaModel::kernels() const {
  const Impl::Layer& l = impl_->layers.front();
  return {{"query/key/value", l.qkv.info()},
          {"attention output", l.o.info()},
          {"up", l.up.info()},
          {"gate (silu, * up)", l.gate.info()},
          {"down", l.down.info()},
          {"output head", impl_->head->info()}};
}

}  // namespace sparq::models
