// libFuzzer harness: BERT and Llama config.json parsing on arbitrary text.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_input.hpp"
#include "sparq/models/bert_config.hpp"
#include "sparq/models/llama_config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  sparq::fuzz::refusals_allowed(
      [&] { (void)sparq::models::BertConfig::from_json_text(text, "config.json"); });
  sparq::fuzz::refusals_allowed(
      [&] { (void)sparq::models::LlamaConfig::from_json_text(text, "config.json"); });
  return 0;
}
