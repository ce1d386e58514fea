// Host-side conversion of fp32 weights to the 16-bit type a GPU kernel reads, and the upload.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "gpu/device_buffer.hpp"
#include "gpu/elementwise.hpp"
#include "sparse/bf16.hpp"
#include "sparse/f16.hpp"

namespace sparq::gpu {

inline std::vector<uint16_t> to_16bit(std::span<const float> values, Elem e) {
  std::vector<uint16_t> bits(values.size());
  for (size_t i = 0; i < values.size(); ++i)
    bits[i] = e == Elem::f16 ? sparse::to_f16(values[i]) : sparse::to_bf16(values[i]);
  return bits;
}

template <typename T>
DeviceBuffer upload(std::span<const T> host) {
  DeviceBuffer buffer;
  buffer.upload(host.data(), host.size_bytes());
  return buffer;
}

}  // namespace sparq::gpu
