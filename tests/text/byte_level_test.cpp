#include "text/byte_level.h"

#include <gtest/gtest.h>

#include <set>

namespace falcon::text {
namespace {

TEST(ByteLevelTest, MapIsTheGpt2Table) {
  // Printable Latin-1 maps to itself; the 68 others go to U+0100.. in byte order.
  EXPECT_EQ(byte_to_unicode('!'), U'!');
  EXPECT_EQ(byte_to_unicode('~'), U'~');
  EXPECT_EQ(byte_to_unicode(0xA1), U'\u00A1');
  EXPECT_EQ(byte_to_unicode(0xAE), U'\u00AE');
  EXPECT_EQ(byte_to_unicode(0xFF), U'\u00FF');
  EXPECT_EQ(byte_to_unicode(0x00), U'\u0100');
  EXPECT_EQ(byte_to_unicode('\n'), U'\u010A');  // the familiar "Ċ"
  EXPECT_EQ(byte_to_unicode(' '), U'\u0120');   // the familiar "Ġ"
  EXPECT_EQ(byte_to_unicode(0x7F), U'\u0121');
  EXPECT_EQ(byte_to_unicode(0xA0), U'\u0142');
  EXPECT_EQ(byte_to_unicode(0xAD), U'\u0143');
}

TEST(ByteLevelTest, MapIsABijection) {
  std::set<char32_t> seen;
  for (int b = 0; b < 256; ++b) {
    const char32_t cp = byte_to_unicode(static_cast<unsigned char>(b));
    EXPECT_TRUE(seen.insert(cp).second) << b;
    EXPECT_EQ(unicode_to_byte(cp), b);
  }
  EXPECT_EQ(unicode_to_byte(U' '), -1);  // space itself is not in the map's range
  EXPECT_EQ(unicode_to_byte(U'\u0144'), -1);
  EXPECT_EQ(unicode_to_byte(U'\U0001F600'), -1);
}

TEST(ByteLevelTest, RoundTripsArbitraryBytes) {
  std::string bytes;
  for (int b = 255; b >= 0; --b) bytes.push_back(static_cast<char>(b));
  std::string mapped;
  append_byte_level(mapped, bytes);
  std::string back;
  ASSERT_TRUE(append_bytes_from_byte_level(back, mapped));
  EXPECT_EQ(back, bytes);

  std::string hello;
  append_byte_level(hello, "a b\n");
  EXPECT_EQ(hello,
            "a\xC4\xA0"
            "b\xC4\x8A");  // "aĠbĊ"
}

TEST(ByteLevelTest, RejectsCharactersOutsideTheMap) {
  std::string out = "keep";
  EXPECT_FALSE(append_bytes_from_byte_level(out, "ab c"));  // a real space is not a byte-level char
  EXPECT_EQ(out, "keep");
}

}  // namespace
}  // namespace falcon::text
