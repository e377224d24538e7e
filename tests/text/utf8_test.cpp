#include "text/utf8.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace falcon::text {
namespace {

const std::string kFffd = "\xEF\xBF\xBD";

TEST(Utf8Test, AcceptsWellFormedText) {
  EXPECT_FALSE(find_invalid_utf8(""));
  EXPECT_FALSE(find_invalid_utf8("plain ascii"));
  EXPECT_FALSE(
      find_invalid_utf8("Gr\xC3\xB6\xC3\x9F"
                        "e \xE6\x9D\xB1 \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF"));
}

TEST(Utf8Test, FindsTheFirstIllFormedByte) {
  EXPECT_EQ(find_invalid_utf8("ab\x80"), 2u);            // stray continuation byte
  EXPECT_EQ(find_invalid_utf8("a\xC0\x80"), 1u);         // overlong NUL
  EXPECT_EQ(find_invalid_utf8("\xE0\x9F\xBF"), 0u);      // overlong 3-byte form
  EXPECT_EQ(find_invalid_utf8("x\xED\xA0\x80"), 1u);     // UTF-16 surrogate U+D800
  EXPECT_EQ(find_invalid_utf8("\xF4\x90\x80\x80"), 0u);  // above U+10FFFF
  EXPECT_EQ(find_invalid_utf8("ok\xF0\x9F\x98"), 2u);    // truncated at the end
  EXPECT_EQ(find_invalid_utf8("\xFF"), 0u);
}

TEST(Utf8Test, RequireValidNamesTheOffset) {
  try {
    require_valid_utf8("abc\xFE", "encode");
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("byte 3"), std::string::npos) << e.what();
  }
}

TEST(Utf8Test, DecodesAndEncodesCodePoints) {
  const std::string s = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80";  // a é € 😀
  size_t pos = 0;
  EXPECT_EQ(next_code_point(s, pos), U'a');
  EXPECT_EQ(next_code_point(s, pos), U'\u00E9');
  EXPECT_EQ(next_code_point(s, pos), U'\u20AC');
  EXPECT_EQ(next_code_point(s, pos), U'\U0001F600');
  EXPECT_EQ(pos, s.size());
  std::string out;
  for (const char32_t cp : {U'a', U'\u00E9', U'\u20AC', U'\U0001F600'}) append_utf8(out, cp);
  EXPECT_EQ(out, s);
  EXPECT_EQ(count_code_points(s), 4u);
}

TEST(Utf8Test, LossyReplacesMaximalSubparts) {
  EXPECT_EQ(utf8_lossy("ok"), "ok");
  // A truncated 4-byte sequence is one maximal subpart: one U+FFFD.
  EXPECT_EQ(utf8_lossy("a\xF0\x9F\x98"), "a" + kFffd);
  // E0 80: 80 cannot follow E0, so both bytes are replaced separately.
  EXPECT_EQ(utf8_lossy("\xE0\x80z"), kFffd + kFffd + "z");
  // Surrogate encoding: ED A0 80 -> three replacements (A0 cannot follow ED).
  EXPECT_EQ(utf8_lossy("\xED\xA0\x80"), kFffd + kFffd + kFffd);
  EXPECT_EQ(utf8_lossy("\xC3\xA9\xFF\xC3"), "\xC3\xA9" + kFffd + kFffd);
  EXPECT_TRUE(ends_with_replacement_char("x" + kFffd));
  EXPECT_FALSE(ends_with_replacement_char("x"));
}

}  // namespace
}  // namespace falcon::text
