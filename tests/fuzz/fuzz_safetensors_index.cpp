// libFuzzer harness: a sharded Hugging Face folder (SafetensorsModel::open) whose
// model.safetensors.index.json is the fuzzer's input, beside two valid shards; every tensor it
// maps is then widened to fp32.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "fuzz_input.hpp"
#include "src/safetensors.hpp"

namespace {

// A folder of this process with the shards (written once).
const std::filesystem::path& folder() {
  static const std::filesystem::path dir = [] {
    auto d = std::filesystem::temp_directory_path() /
             ("sparq-fuzz-shards-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    const std::vector<float> v = {1.0f, -2.0f, 3.0f, -4.0f, 5.0f, -6.0f};
    sparq::write_safetensors((d / "model-00001-of-00002.safetensors").string(),
                             {{"a.weight", sparq::TensorDType::f32, {2, 3}, v.data()},
                              {"b.bias", sparq::TensorDType::bf16, {3}, v.data()}});
    sparq::write_safetensors((d / "model-00002-of-00002.safetensors").string(),
                             {{"c.weight", sparq::TensorDType::f16, {3, 2}, v.data()}});
    return d;
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto& dir = folder();
  if (FILE* f = std::fopen((dir / "model.safetensors.index.json").c_str(), "wb")) {
    std::fwrite(data, 1, size, f);
    std::fclose(f);
  }
  sparq::fuzz::refusals_allowed([&] {
    const auto model = sparq::SafetensorsModel::open(dir.string());
    for (const auto& name : model.names())
      sparq::fuzz::refusals_allowed([&] { (void)model.tensor(name).to_f32(); });
  });
  return 0;
}
