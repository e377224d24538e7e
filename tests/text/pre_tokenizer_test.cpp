#include "text/pre_tokenizer.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace falcon::text {
namespace {

using Pieces = std::vector<std::string>;

Pieces pre_tokenize(const std::string& config_json, const std::string& text,
                    bool at_text_start = true) {
  const nlohmann::json j = nlohmann::json::parse(config_json);
  const std::string file = "test.json";
  std::vector<PreToken> pieces{{text, at_text_start}};
  parse_pre_tokenizer(JsonField(j, file, "pre_tokenizer"))->pre_tokenize(pieces);
  Pieces out;
  for (const PreToken& p : pieces) out.push_back(p.text);
  return out;
}

TEST(PreTokenizerTest, ByteLevel) {
  // "Ġ" is the byte-level form of a space.
  EXPECT_EQ(pre_tokenize(R"({"type": "ByteLevel", "add_prefix_space": true, "use_regex": true})",
                         "Hello world"),
            (Pieces{"ĠHello", "Ġworld"}));
  EXPECT_EQ(pre_tokenize(R"({"type": "ByteLevel", "add_prefix_space": false, "use_regex": true})",
                         "Hello world"),
            (Pieces{"Hello", "Ġworld"}));
  EXPECT_EQ(pre_tokenize(R"({"type": "ByteLevel", "add_prefix_space": false, "use_regex": false})",
                         "Hello world\n"),
            (Pieces{"HelloĠworldĊ"}));
  // Multi-byte characters become one byte-level character per byte: é is C3 A9 -> "Ã©".
  EXPECT_EQ(pre_tokenize(R"({"type": "ByteLevel", "add_prefix_space": false, "use_regex": true})",
                         "café"),
            (Pieces{"cafÃ©"}));
}

TEST(PreTokenizerTest, SplitBehaviourAndInvert) {
  EXPECT_EQ(
      pre_tokenize(
          R"({"type": "Split", "pattern": {"Regex": "\\s+"}, "behavior": "Isolated", "invert": false})",
          "a  b"),
      (Pieces{"a", "  ", "b"}));
  EXPECT_EQ(
      pre_tokenize(
          R"({"type": "Split", "pattern": {"Regex": "\\s+"}, "behavior": "Removed", "invert": false})",
          "a  b"),
      (Pieces{"a", "b"}));
  // Inverted: the words are what matches, so Removed drops the text between them.
  EXPECT_EQ(
      pre_tokenize(
          R"({"type": "Split", "pattern": {"Regex": "\\w+"}, "behavior": "Removed", "invert": true})",
          "ab, cd"),
      (Pieces{"ab", "cd"}));
  EXPECT_EQ(
      pre_tokenize(
          R"({"type": "Split", "pattern": {"String": " "}, "behavior": "MergedWithPrevious", "invert": false})",
          "a b c"),
      (Pieces{"a ", "b ", "c"}));
  EXPECT_EQ(
      pre_tokenize(
          R"({"type": "Split", "pattern": {"String": "-"}, "behavior": "MergedWithNext", "invert": false})",
          "x-y--z"),
      (Pieces{"x", "-y", "-", "-z"}));
}

TEST(PreTokenizerTest, Punctuation) {
  EXPECT_EQ(pre_tokenize(R"({"type": "Punctuation"})", "Hey, you!!"),
            (Pieces{"Hey", ",", " you", "!", "!"}));
  EXPECT_EQ(pre_tokenize(R"({"type": "Punctuation", "behavior": "Contiguous"})", "Hey, you!!"),
            (Pieces{"Hey", ",", " you", "!!"}));
}

TEST(PreTokenizerTest, Digits) {
  EXPECT_EQ(pre_tokenize(R"({"type": "Digits", "individual_digits": false})", "abc123def4"),
            (Pieces{"abc", "123", "def", "4"}));
  EXPECT_EQ(pre_tokenize(R"({"type": "Digits", "individual_digits": true})", "abc123def4"),
            (Pieces{"abc", "1", "2", "3", "def", "4"}));
}

TEST(PreTokenizerTest, WhitespaceAndWhitespaceSplit) {
  EXPECT_EQ(pre_tokenize(R"({"type": "Whitespace"})", "Hey man!! How's it?"),
            (Pieces{"Hey", "man", "!!", "How", "'", "s", "it", "?"}));
  EXPECT_EQ(pre_tokenize(R"({"type": "WhitespaceSplit"})", " Hey man!!\tok\xE3\x80\x80"),
            (Pieces{"Hey", "man!!", "ok"}));
  EXPECT_EQ(pre_tokenize(R"({"type": "BertPreTokenizer"})", "Hey man!! ok"),
            (Pieces{"Hey", "man", "!", "!", "ok"}));
}

TEST(PreTokenizerTest, Metaspace) {
  EXPECT_EQ(
      pre_tokenize(
          R"({"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true})",
          "Hey friend"),
      (Pieces{"▁Hey", "▁friend"}));
  EXPECT_EQ(
      pre_tokenize(
          R"({"type": "Metaspace", "replacement": "▁", "prepend_scheme": "never", "split": true})",
          "Hey friend"),
      (Pieces{"Hey", "▁friend"}));
  EXPECT_EQ(
      pre_tokenize(
          R"({"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": false})",
          "Hey friend"),
      (Pieces{"▁Hey▁friend"}));
  // "first" prepends only to a piece that starts the input.
  const std::string first =
      R"({"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first"})";
  EXPECT_EQ(pre_tokenize(first, "Hey friend", true), (Pieces{"▁Hey", "▁friend"}));
  EXPECT_EQ(pre_tokenize(first, "Hey friend", false), (Pieces{"Hey", "▁friend"}));
  // Leading spaces: each replacement stays with what follows it.
  EXPECT_EQ(pre_tokenize(R"({"type": "Metaspace", "replacement": "▁"})", "  x"),
            (Pieces{"▁", "▁x"}));
  // Legacy add_prefix_space=false means never.
  EXPECT_EQ(pre_tokenize(R"({"type": "Metaspace", "replacement": "▁", "add_prefix_space": false})",
                         "a b"),
            (Pieces{"a", "▁b"}));
}

TEST(PreTokenizerTest, SequenceChainsSteps) {
  EXPECT_EQ(pre_tokenize(R"({"type": "Sequence", "pretokenizers": [
                  {"type": "Digits", "individual_digits": false},
                  {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}]})",
                         "a 12"),
            (Pieces{"aĠ", "12"}));
}

TEST(PreTokenizerTest, ConfigErrors) {
  EXPECT_THROW(
      pre_tokenize(R"({"type": "Split", "pattern": {"Regex": "["}, "behavior": "Isolated"})", "x"),
      FileError);
  EXPECT_THROW(
      pre_tokenize(R"({"type": "Split", "pattern": {"String": " "}, "behavior": "Sideways"})", "x"),
      FileError);
  EXPECT_THROW(pre_tokenize(R"({"type": "Metaspace", "replacement": "ab"})", "x"), FileError);
  EXPECT_THROW(pre_tokenize(R"({"type": "UnicodeScripts"})", "x"), Unsupported);
  EXPECT_THROW(pre_tokenize(R"({"kind": "ByteLevel"})", "x"), FileError);
}

}  // namespace
}  // namespace falcon::text
