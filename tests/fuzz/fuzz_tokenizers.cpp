// libFuzzer harness: the tokenizers' files and encode on arbitrary bytes. The input is split at
// its first 0xff byte: before it the file (a WordPiece vocab.txt, and a tokenizer.json for the
// byte-level BPE and SentencePiece-style readers), after it the text to encode (invalid UTF-8
// included).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

#include "fuzz_input.hpp"
#include "sparq/models/bpe_tokenizer.hpp"
#include "sparq/models/spm_tokenizer.hpp"
#include "sparq/models/wordpiece.hpp"

namespace {

// A folder of this process holding tokenizer.json (from_folder reads a folder).
const std::filesystem::path& folder() {
  static const std::filesystem::path dir = [] {
    auto d = std::filesystem::temp_directory_path() /
             ("sparq-fuzz-tokenizers-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using sparq::fuzz::refusals_allowed;
  size_t split = 0;
  while (split < size && data[split] != 0xff) ++split;
  const std::string text(reinterpret_cast<const char*>(data) + (split < size ? split + 1 : size),
                         split < size ? size - split - 1 : 0);
  const sparq::fuzz::MemoryFile vocab(data, split);
  refusals_allowed([&] {
    for (bool lower : {false, true}) {
      const auto wp = sparq::models::WordPieceTokenizer::from_vocab_file(vocab.path(), lower);
      refusals_allowed([&] { (void)wp.encode(text); });
    }
  });
  if (FILE* f = std::fopen((folder() / "tokenizer.json").c_str(), "wb")) {
    std::fwrite(data, 1, split, f);
    std::fclose(f);
  }
  refusals_allowed([&] {
    const auto bpe = sparq::models::BpeTokenizer::from_folder(folder().string());
    refusals_allowed([&] {
      const auto ids = bpe.encode(text, true);
      (void)bpe.decode(ids);
    });
  });
  refusals_allowed([&] {
    const auto spm = sparq::models::SpmTokenizer::from_folder(folder().string());
    refusals_allowed([&] {
      const auto ids = spm.encode(text, true);
      (void)spm.decode(ids);
    });
  });
  return 0;
}
