#include "bench/encoder_quality.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <sstream>

#include "sparq/error.hpp"

namespace sparq::bench {

std::vector<std::string> text_sentences(const std::vector<std::string>& files,
                                        size_t max_sentences) {
  std::vector<std::string> out;
  auto flush = [&](std::string& s) {
    const auto words = std::count(s.begin(), s.end(), ' ') + (s.empty() ? 0 : 1);
    if (words >= 4 && out.size() < max_sentences) out.push_back(s);
    s.clear();
  };
  for (const std::string& f : files) {
    std::ifstream in(f, std::ios::binary);
    if (!in) throw InvalidArgument("cannot read the text file " + f);
    std::ostringstream buffer;
    buffer << in.rdbuf();
    const std::string text = buffer.str();
    std::string s;
    int newlines = 0;
    for (size_t i = 0; i < text.size(); ++i) {
      const auto c = static_cast<unsigned char>(text[i]);
      if (std::isspace(c)) {
        newlines += c == '\n';
        if (newlines >= 2) flush(s);
        if (!s.empty() && s.back() != ' ') s += ' ';
        continue;
      }
      newlines = 0;
      s += static_cast<char>(c);
      const bool end = c == '.' || c == '!' || c == '?';
      if (end && (i + 1 == text.size() || std::isspace(static_cast<unsigned char>(text[i + 1]))))
        flush(s);
    }
    while (!s.empty() && s.back() == ' ') s.pop_back();
    flush(s);
  }
  return out;
}

CosineReport embedding_cosine(const models::BertEncoder& reference,
                              const models::BertEncoder& model,
                              const models::WordPieceTokenizer& tokenizer,
                              const std::vector<std::string>& sentences, int64_t max_tokens) {
  if (sentences.empty()) throw InvalidArgument("no sentences of 4 or more words in the text");
  CosineReport r;
  double sum = 0;
  for (const std::string& s : sentences) {
    models::EncoderInput input;
    input.ids = tokenizer.encode(s, max_tokens);
    input.batch = 1;
    input.seq = static_cast<int64_t>(input.ids.size());
    input.lengths = {input.seq};
    const auto a = reference.embed(input, models::BertEncoder::Pooling::mean);
    const auto b = model.embed(input, models::BertEncoder::Pooling::mean);
    double dot = 0, na = 0, nb = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      dot += double(a[i]) * b[i];
      na += double(a[i]) * a[i];
      nb += double(b[i]) * b[i];
    }
    const double c = na > 0 && nb > 0 ? dot / std::sqrt(na * nb) : 0.0;
    sum += c;
    r.min = std::min(r.min, c);
    ++r.sentences;
  }
  r.mean = sum / static_cast<double>(r.sentences);
  return r;
}

}  // namespace sparq::bench
