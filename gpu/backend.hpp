// The boundary between libsparq and its CUDA backend (libsparq_cuda.so, built from gpu/ when the
// CUDA toolkit is found). libsparq loads the backend with dlopen the first time a layer asks for
// Device::cuda, so the CPU library never needs CUDA at run time. Plain C++ types only: no CUDA
// header is included on this side.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sparq/device.hpp"
#include "sparq/linear.hpp"
#include "sparq/models/bert_encoder.hpp"

namespace sparq::gpu {

// Bumped whenever this interface changes; a backend of another version is refused by name.
constexpr int kBackendAbi = 1;

// One linear layer packed on a GPU.
class DeviceLinear {
 public:
  virtual ~DeviceLinear() = default;
  virtual LinearInfo info() const = 0;
  // Host fp32 pointers: copied to the device, converted, run, synchronized and copied back.
  virtual void forward_host(const float* x, int64_t tokens, float* y,
                            const float* residual) const = 0;
  // Device pointers in the layer's activation type (see SparseLinear::forward_device).
  virtual void forward_device(const void* x, int64_t tokens, void* y, const void* residual,
                              void* stream) const = 0;
};

// A BERT-family encoder whose whole forward pass runs on one GPU (EncoderOptions.device cuda):
// embeddings, LayerNorms, attention and the linear layers, activations in fp16 or bf16.
class DeviceEncoder {
 public:
  virtual ~DeviceEncoder() = default;
  // As BertEncoder::forward: last hidden states [batch x seq x hidden], fp32 on the host, padded
  // positions zero. Input already validated by BertEncoder.
  virtual std::vector<float> forward(const models::EncoderInput& input,
                                     models::ForwardProfile* profile) const = 0;
  virtual std::vector<std::pair<std::string, LinearInfo>> kernels() const = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual CudaStatus status() const = 0;
  // Arguments are validated by SparseLinear::pack before this is called.
  virtual std::unique_ptr<DeviceLinear> pack(const float* weight, int64_t out, int64_t in,
                                             const float* bias,
                                             const LinearOptions& options) const = 0;
  // Throws NotSupported for dtypes other than f16 / bf16 / int8 (int8: the linear layers only).
  virtual std::unique_ptr<DeviceEncoder> build_encoder(
      const models::BertConfig& config, const models::BertWeights& weights,
      const models::EncoderOptions& options) const = 0;
};

}  // namespace sparq::gpu

// The one symbol libsparq_cuda.so exports for libsparq. Returns null when `abi` differs from the
// backend's kBackendAbi.
extern "C" sparq::gpu::Backend* sparq_cuda_backend(int abi);
