// The special tokens both text tokenizers (byte-level BPE, SentencePiece) match verbatim in the
// text before anything else: finding them, and splitting a text at them.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace sparq::models {

using SpecialTokens = std::vector<std::pair<std::string, int32_t>>;  // text, id; longest first

// The non-empty texts of `ids` in `tokens`, longest first; ModelFileError naming `origin` for an
// id outside the vocabulary.
SpecialTokens special_tokens(const std::vector<std::string>& tokens,
                             const std::vector<int32_t>& ids, const std::string& origin);

// Splits text at its special tokens (the earliest next; the longest where several start at one
// place): on_text(begin, end) for each stretch of text before a special (possibly empty) and
// after the last one, and each special's id appended to out in between.
template <typename OnText>
void split_at_specials(const std::string& text, const SpecialTokens& specials,
                       std::vector<int32_t>& out, OnText on_text) {
  size_t at = 0;
  while (at < text.size()) {
    size_t next = std::string::npos;
    const std::pair<std::string, int32_t>* found = nullptr;
    for (const auto& s : specials) {
      const size_t p = text.find(s.first, at);
      if (p != std::string::npos &&
          (p < next || (p == next && s.first.size() > found->first.size()))) {
        next = p;
        found = &s;
      }
    }
    on_text(at, found ? next : text.size());
    if (!found) break;
    out.push_back(found->second);
    at = next + found->first.size();
  }
}

}  // namespace sparq::models
