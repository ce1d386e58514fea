// libFuzzer harness: the GGUF reader on arbitrary bytes; every metadata value through the typed
// getters, every tensor dequantized (every quant type sparq reads), the BPE tokenizer and the
// Llama configuration read from the metadata.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_input.hpp"
#include "sparq/models/bpe_tokenizer.hpp"
#include "src/gguf.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using sparq::fuzz::refusals_allowed;
  const sparq::fuzz::MemoryFile file(data, size);
  refusals_allowed([&] {
    const auto g = sparq::GgufFile::open(file.path());
    for (const auto& entry : g.metadata()) {
      const std::string& key = entry.first;  // (clang 14 cannot capture a structured binding)
      refusals_allowed([&] { (void)g.get_string(key); });
      refusals_allowed([&] { (void)g.get_uint(key); });
      refusals_allowed([&] { (void)g.get_float(key); });
      refusals_allowed([&] { (void)g.get_strings(key); });
      refusals_allowed([&] { (void)g.get_floats(key); });
      refusals_allowed([&] { (void)g.get_ints(key); });
    }
    for (const auto& name : g.tensor_names())
      refusals_allowed([&] { (void)g.tensor(name).to_f32(); });
    refusals_allowed([&] {
      const auto tokenizer = sparq::models::BpeTokenizer::from_gguf(g);
      (void)tokenizer.encode("Hello, world! 123", true);
    });
  });
  return 0;
}
