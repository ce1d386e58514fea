// The BERT-family encoder on one GPU: the forward pass of models/bert_encoder.cpp with every step
// on the device (embedding gather + LayerNorm, the linear layers through the backend's kernels,
// masked softmax attention, residuals, LayerNorms), activations in fp16 or bf16.
#pragma once

#include <memory>

#include "gpu/backend.hpp"

namespace sparq::gpu {

// `backend` packs the linear layers (the same kernel choice as SparseLinear on cuda).
std::unique_ptr<DeviceEncoder> make_cuda_bert_encoder(const Backend& backend,
                                                      const models::BertConfig& config,
                                                      const models::BertWeights& weights,
                                                      const models::EncoderOptions& options);

}  // namespace sparq::gpu
