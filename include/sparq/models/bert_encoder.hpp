// A BERT-family encoder whose linear layers run on sparq::SparseLinear: embeddings (word,
// position, token type, LayerNorm), encoder layers (self-attention with a padding mask, FFN with
// the config's activation, post-LayerNorm as BERT and DistilBERT do), and CLS or mean pooling.
// A batch holds sequences of different lengths, padded to the longest; padded positions are
// masked out of attention and their outputs are zero.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sparq/linear.hpp"
#include "sparq/models/bert_config.hpp"
#include "sparq/models/bert_weights.hpp"

namespace sparq::models {

// The precision of self-attention's two products (q k^T and p v) on the CPU; the softmax and the
// accumulation are fp32 in both.
enum class AttentionPrecision {
  // bf16 where the linear layers are int8 or bf16 and either the CPU has AMX-BF16 (both products
  // on AMX tiles) or AVX512_BF16 at full rate (AMD; Intel's vdpbf16ps runs at a quarter of its
  // FMA rate, so fp32 is faster there without AMX), else f32
  automatic,
  f32,
  // q, k, v and the probabilities rounded to bf16 (AMX tiles where the CPU has AMX-BF16, else
  // vdpbf16ps); needs AVX512_BF16
  bf16,
};

struct EncoderOptions {
  DType dtype = DType::f32;                // of every linear layer
  Pattern pattern = Pattern::automatic();  // of every linear layer
  int threads = 0;                         // 0: all cores
  // Device::cuda(N): the whole forward pass on GPU N (dtype f16, bf16, or int8 linear layers with
  // fp16 activations); forward still takes and returns host data.
  Device device = Device::cpu();
  // CPU only (a GPU forward pass keeps its own attention). bf16 on a CPU without AVX512_BF16, or
  // a head dimension that is odd or above 1024: NotSupported.
  AttentionPrecision attention = AttentionPrecision::automatic;
  int pool = 0;  // the thread pool of every layer and stage (see LinearOptions::pool)
};

// One batch: token ids [batch x seq] (row-major, padded), each sequence's length (<= seq), and
// optional token type ids (like the ids; empty: all 0).
struct EncoderInput {
  int64_t batch = 0, seq = 0;
  std::vector<int32_t> ids;
  std::vector<int64_t> lengths;
  std::vector<int32_t> token_types;
};

// Where a forward call spent its time, summed over layers (milliseconds): filled when a caller
// passes one (sparq-eval --profile); clocks are read only then. On the CPU wall clock per stage;
// on a GPU the stream's time per stage from CUDA events (the forward does not wait between
// stages), without the input's upload and the output's download.
struct ForwardProfile {
  double embeddings = 0, qkv = 0, attention = 0, attention_out = 0, intermediate = 0, output = 0,
         layer_norm = 0;
  double total() const {
    return embeddings + qkv + attention + attention_out + intermediate + output + layer_norm;
  }
};

class BertEncoder {
 public:
  // From a Hugging Face folder (config.json + safetensors).
  static BertEncoder load(const std::string& dir, const EncoderOptions& options);
  // From weights in memory (synthetic models, pruned copies).
  static BertEncoder build(const BertConfig& config, const BertWeights& weights,
                           const EncoderOptions& options);

  BertEncoder(BertEncoder&&) noexcept;
  BertEncoder& operator=(BertEncoder&&) noexcept;
  ~BertEncoder();

  // The last hidden states [batch x seq x hidden]; padded positions are zero. Safe to call from
  // several threads at once on one encoder. Throws InvalidArgument for ids out of the vocabulary,
  // lengths out of range or sizes that disagree.
  std::vector<float> forward(const EncoderInput& input, ForwardProfile* profile = nullptr) const;
  // Sentence embeddings [batch x hidden]: the CLS position's hidden state, or the mean over each
  // sequence's real tokens.
  enum class Pooling { cls, mean };
  std::vector<float> embed(const EncoderInput& input, Pooling pooling) const;

  const BertConfig& config() const;
  // The kernel (and why) of each linear layer kind: query/key/value, attention output,
  // intermediate, output.
  std::vector<std::pair<std::string, LinearInfo>> kernels() const;
  // Which attention runs: "bf16 (vdpbf16ps, avx512_bf16)", "f32 (avx512)", "f32 (avx2)", "f32
  // (portable)", or the GPU's.
  std::string attention_kernel() const;

 private:
  struct Impl;
  explicit BertEncoder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sparq::models
