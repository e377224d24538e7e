#include "text/normalizer.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "text/unicode.h"

namespace falcon::text {
namespace {

std::string normalize(const std::string& config_json, std::string text) {
  const nlohmann::json j = nlohmann::json::parse(config_json);
  const std::string file = "test.json";
  parse_normalizer(JsonField(j, file, "normalizer"))->normalize(text);
  return text;
}

TEST(NormalizerTest, UnicodeForms) {
  const std::string e_combining = "e\xCC\x81";  // e + U+0301
  const std::string e_acute = "\xC3\xA9";       // é
  EXPECT_EQ(normalize(R"({"type": "NFC"})", "caf" + e_combining), "caf" + e_acute);
  EXPECT_EQ(normalize(R"({"type": "NFD"})", "caf" + e_acute), "caf" + e_combining);
  // Compatibility forms: the "fi" ligature and fullwidth A.
  EXPECT_EQ(normalize(R"({"type": "NFKC"})", "\xEF\xAC\x81 \xEF\xBC\xA1"), "fi A");
  EXPECT_EQ(normalize(R"({"type": "NFC"})", "\xEF\xAC\x81"), "\xEF\xAC\x81");
  EXPECT_EQ(normalize(R"({"type": "NFKD"})", "\xEF\xAC\x81" + e_acute), "fi" + e_combining);
}

TEST(NormalizerTest, Lowercase) {
  // Full mapping: U+0130 (capital I with dot) lowercases to i + combining dot.
  EXPECT_EQ(normalize(R"({"type": "Lowercase"})", "HeLLo \xC3\x80 \xC4\xB0 \xCE\xA3"),
            "hello \xC3\xA0 i\xCC\x87 \xCF\x83");
}

TEST(NormalizerTest, StripRemovesUnicodeWhitespace) {
  EXPECT_EQ(normalize(R"({"type": "Strip", "strip_left": true, "strip_right": true})",
                      " \t\xE3\x80\x80 mid dle \xC2\xA0\n"),
            "mid dle");
  EXPECT_EQ(normalize(R"({"type": "Strip", "strip_left": false, "strip_right": true})", "  x  "),
            "  x");
  EXPECT_EQ(normalize(R"({"type": "Strip", "strip_left": true, "strip_right": false})", "  x  "),
            "x  ");
  EXPECT_EQ(normalize(R"({"type": "Strip", "strip_left": true, "strip_right": true})", "   "), "");
}

TEST(NormalizerTest, StripAccentsDropsCombiningMarks) {
  EXPECT_EQ(normalize(R"({"type": "StripAccents"})", "e\xCC\x81t\xC3\xA9"), "et\xC3\xA9");
}

TEST(NormalizerTest, PrependOnlyToNonEmptyText) {
  EXPECT_EQ(normalize(R"({"type": "Prepend", "prepend": "▁"})", "hey"), "▁hey");
  EXPECT_EQ(normalize(R"({"type": "Prepend", "prepend": "▁"})", ""), "");
}

TEST(NormalizerTest, ReplaceStringAndRegex) {
  EXPECT_EQ(
      normalize(R"({"type": "Replace", "pattern": {"String": " "}, "content": "▁"})", "a b  c"),
      "a▁b▁▁c");
  EXPECT_EQ(
      normalize(R"({"type": "Replace", "pattern": {"Regex": "\\s+"}, "content": " "})", "a \t\n b"),
      "a b");
  // A literal pattern with regex metacharacters is taken verbatim.
  EXPECT_EQ(
      normalize(R"({"type": "Replace", "pattern": {"String": "a.b"}, "content": "X"})", "a.b axb"),
      "X axb");
}

TEST(NormalizerTest, SequenceAppliesInOrder) {
  EXPECT_EQ(normalize(R"({"type": "Sequence", "normalizers": [
                {"type": "Prepend", "prepend": "▁"},
                {"type": "Replace", "pattern": {"String": " "}, "content": "▁"},
                {"type": "Lowercase"}]})",
                      "Hello World"),
            "▁hello▁world");
}

TEST(NormalizerTest, ByteLevelMapsBytes) {
  EXPECT_EQ(normalize(R"({"type": "ByteLevel"})", "a b"),
            "a\xC4\xA0"
            "b");
}

TEST(NormalizerTest, ConfigErrorsNameTheField) {
  try {
    normalize(R"({"type": "Sequence", "normalizers": [{"type": "Prepend"}]})", "x");
    FAIL();
  } catch (const FileError& e) {
    EXPECT_NE(std::string(e.what()).find("test.json: field 'normalizer.normalizers[0].prepend'"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(normalize(R"({"type": "Precompiled", "precompiled_charsmap": ""})", "x"),
               Unsupported);
  EXPECT_THROW(normalize(R"({"type": "Replace", "pattern": {"Regex": "("}, "content": ""})", "x"),
               FileError);
}

TEST(UnicodeClassesTest, MatchRustDefinitions) {
  EXPECT_TRUE(is_white_space(U'\u3000'));
  EXPECT_TRUE(is_white_space(U'\u0085'));
  EXPECT_FALSE(is_white_space(U'\u200B'));  // zero-width space is not White_Space
  EXPECT_TRUE(is_numeric(U'\u00BD'));       // ½ (No)
  EXPECT_TRUE(is_numeric(U'\u2167'));       // Ⅷ (Nl)
  EXPECT_FALSE(is_numeric(U'a'));
  EXPECT_TRUE(is_punctuation(U'$'));        // ASCII symbols count as punctuation
  EXPECT_TRUE(is_punctuation(U'\u3002'));   // 。
  EXPECT_FALSE(is_punctuation(U'\u00A9'));  // © is a symbol
  EXPECT_TRUE(is_word_char(U'_'));
  EXPECT_TRUE(is_word_char(U'\u0301'));  // marks
  EXPECT_TRUE(is_word_char(U'\u200D'));  // join control
  EXPECT_TRUE(is_word_char(U'\u24B6'));  // Ⓐ is Alphabetic
  EXPECT_FALSE(is_word_char(U'-'));
}

}  // namespace
}  // namespace falcon::text
