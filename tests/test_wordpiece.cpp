// The WordPiece tokenizer against BertTokenizer's behaviour on a small vocabulary: greedy "##"
// pieces, lower-casing with accents stripped, punctuation and CJK split, control characters
// dropped, Unicode whitespace, unknown words, [CLS]/[SEP] and truncation, bad input.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "sparq/error.hpp"
#include "sparq/models/wordpiece.hpp"

namespace sparq::models {
namespace {

using Pieces = std::vector<std::string>;

WordPieceTokenizer make(bool lower = true) {
  return WordPieceTokenizer({"[PAD]", "[UNK]", "[CLS]", "[SEP]", "want", "##want", "##ed", "wa",
                             "un",    "runn",  "##ing", ",",     "!",    "cafe",   "Café", "中",
                             "的",    "hello", "world", "$",     "5",    "##0"},
                            lower, "test vocab");
}

TEST(WordPiece, SplitsIntoGreedyPieces) {
  // Hugging Face's own BertTokenizer example.
  EXPECT_EQ(make().tokenize("UNwant\u00E9d,running"),
            (Pieces{"un", "##want", "##ed", ",", "runn", "##ing"}));
  EXPECT_EQ(make().tokenize("unwantedX running"), (Pieces{"[UNK]", "runn", "##ing"}));
  EXPECT_EQ(make().tokenize("$500!"), (Pieces{"$", "5", "##0", "##0", "!"}));
}

TEST(WordPiece, LowerCasesStripsAccentsAndSplitsPunctuationAndCjk) {
  EXPECT_EQ(make().tokenize("Caf\u00E9 HELLO!world"), (Pieces{"cafe", "hello", "!", "world"}));
  EXPECT_EQ(make().tokenize("\u4E2D\u7684hello"), (Pieces{"中", "的", "hello"}));
  // Tab, newline and no-break space separate words; control and format characters vanish
  // without separating (as in BertTokenizer), so "world<BEL><ZWSP>hello" is one unknown word.
  EXPECT_EQ(make().tokenize("hello\tworld\nhello\u00A0world\u0007\u200Bhello"),
            (Pieces{"hello", "world", "hello", "[UNK]"}));
  EXPECT_EQ(make().tokenize("hel\u0007lo"), (Pieces{"hello"}));
  EXPECT_EQ(make(false).tokenize("Caf\u00E9 hello"), (Pieces{"Café", "hello"}));
  EXPECT_EQ(make(false).tokenize("HELLO"), (Pieces{"[UNK]"}));
  EXPECT_TRUE(make().tokenize(" \t\n").empty());
}

TEST(WordPiece, EncodesWithSpecialTokensAndTruncates) {
  const auto t = make();
  EXPECT_EQ(t.encode("hello world"), (std::vector<int32_t>{2, 17, 18, 3}));
  EXPECT_EQ(t.encode("hello world hello", 3), (std::vector<int32_t>{2, 17, 3}));
  EXPECT_EQ(t.encode(""), (std::vector<int32_t>{2, 3}));
  EXPECT_EQ(t.id("nothing"), 1);
  EXPECT_THROW(t.encode("x", 1), InvalidArgument);
  EXPECT_THROW(t.tokenize("bad \xC3\x28 utf8"), InvalidArgument);
  EXPECT_EQ(make().tokenize(std::string(101, 'a')), (Pieces{"[UNK]"}));  // > 100 characters
}

TEST(WordPiece, ReadsAFolderAndRejectsBadVocabularies) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / "sparq_wordpiece_test";
  fs::create_directories(dir);
  std::ofstream(dir / "vocab.txt") << "[PAD]\r\n[UNK]\n[CLS]\n[SEP]\nHello\nhello\n";
  std::ofstream(dir / "tokenizer_config.json") << R"({"do_lower_case": false})";
  const auto cased = WordPieceTokenizer::from_folder(dir.string());
  EXPECT_EQ(cased.vocab_size(), 6);
  EXPECT_EQ(cased.encode("Hello"), (std::vector<int32_t>{2, 4, 3}));
  fs::remove(dir / "tokenizer_config.json");
  EXPECT_EQ(WordPieceTokenizer::from_folder(dir.string()).encode("Hello"),
            (std::vector<int32_t>{2, 5, 3}));  // lower-casing is the default
  std::ofstream(dir / "vocab.txt") << "[PAD]\n[CLS]\n[SEP]\n";
  EXPECT_THROW(WordPieceTokenizer::from_folder(dir.string()), ModelFileError);
  fs::remove_all(dir);
  EXPECT_THROW(WordPieceTokenizer::from_folder(dir.string()), ModelFileError);
}

}  // namespace
}  // namespace sparq::models
