// libFuzzer harness: whole model folders. The input's first two bytes give the length of a
// config.json, the rest is model.safetensors; both land in a folder of this process, which
// BertEncoder::load and LlamaModel::load then read (fp32, one thread) and, where they accept it,
// run one short forward pass.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

#include "fuzz_input.hpp"
#include "sparq/models/bert_encoder.hpp"
#include "sparq/models/llama_model.hpp"

namespace {

const std::filesystem::path& folder() {
  static const std::filesystem::path dir = [] {
    auto d =
        std::filesystem::temp_directory_path() / ("sparq-fuzz-model-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

void write(const std::filesystem::path& path, const uint8_t* data, size_t size) {
  if (FILE* f = std::fopen(path.c_str(), "wb")) {
    std::fwrite(data, 1, size, f);
    std::fclose(f);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sparq::models;
  using sparq::fuzz::refusals_allowed;
  if (size < 2) return 0;
  const size_t config_bytes = std::min<size_t>(size - 2, size_t{data[0]} | size_t{data[1]} << 8);
  write(folder() / "config.json", data + 2, config_bytes);
  write(folder() / "model.safetensors", data + 2 + config_bytes, size - 2 - config_bytes);
  refusals_allowed([&] {
    const auto encoder =
        BertEncoder::load(folder().string(), {sparq::DType::f32, sparq::Pattern::automatic(), 1});
    EncoderInput in;
    in.batch = 1;
    in.seq = 2;
    in.ids = {0, 1};
    in.lengths = {2};
    refusals_allowed([&] { (void)encoder.forward(in); });
  });
  refusals_allowed([&] {
    const auto model =
        LlamaModel::load(folder().string(), {sparq::DType::f32, sparq::Pattern::automatic(), 1});
    auto session = model.start(4);
    refusals_allowed([&] { (void)session.forward({0, 1}); });
  });
  return 0;
}
