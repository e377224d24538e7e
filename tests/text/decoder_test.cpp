#include "text/decoder.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace falcon::text {
namespace {

using Tokens = std::vector<std::string>;
const std::string kFffd = "\xEF\xBF\xBD";

Tokens decode_chain(const std::string& config_json, Tokens tokens) {
  const nlohmann::json j = nlohmann::json::parse(config_json);
  const std::string file = "test.json";
  parse_decoder(JsonField(j, file, "decoder"))->decode_chain(tokens);
  return tokens;
}

TEST(DecoderTest, ByteLevelJoinsBytesAcrossTokens) {
  // "Ã" + "©" are the two bytes of é split over two tokens.
  EXPECT_EQ(decode_chain(R"({"type": "ByteLevel"})", {"ĠcafÃ", "©", "Ċ"}), (Tokens{" café\n"}));
  // Tokens outside the byte map (added tokens) pass through as text.
  EXPECT_EQ(decode_chain(R"({"type": "ByteLevel"})", {"<|image|>", "Ġhi"}),
            (Tokens{"<|image|> hi"}));
  EXPECT_EQ(decode_chain(R"({"type": "ByteLevel"})", {"<|a b|>"}), (Tokens{"<|a b|>"}));
  // A lone lead byte is not UTF-8.
  EXPECT_EQ(decode_chain(R"({"type": "ByteLevel"})", {"Ã", "x"}), (Tokens{kFffd + "x"}));
}

TEST(DecoderTest, MetaspaceDropsTheFirstPrependedReplacement) {
  EXPECT_EQ(decode_chain(R"({"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always"})",
                         {"▁Hey", "▁friend", "!"}),
            (Tokens{"Hey", " friend", "!"}));
  EXPECT_EQ(decode_chain(R"({"type": "Metaspace", "replacement": "▁", "prepend_scheme": "never"})",
                         {"▁Hey"}),
            (Tokens{" Hey"}));
}

TEST(DecoderTest, ByteFallback) {
  EXPECT_EQ(decode_chain(R"({"type": "ByteFallback"})", {"a", "<0xC3>", "<0xA9>", "b"}),
            (Tokens{"a", "\xC3\xA9", "b"}));
  // Invalid byte runs give one U+FFFD per byte.
  EXPECT_EQ(decode_chain(R"({"type": "ByteFallback"})", {"<0xC3>", "<0x41>", "<0xFF>"}),
            (Tokens{kFffd, kFffd, kFffd}));
  // Not byte tokens: wrong length or non-hex digits.
  EXPECT_EQ(decode_chain(R"({"type": "ByteFallback"})", {"<0x4>", "<0xZZ>"}),
            (Tokens{"<0x4>", "<0xZZ>"}));
}

TEST(DecoderTest, FuseStripReplace) {
  EXPECT_EQ(decode_chain(R"({"type": "Fuse"})", {"a", "b", "c"}), (Tokens{"abc"}));
  EXPECT_EQ(
      decode_chain(R"({"type": "Strip", "content": " ", "start": 1, "stop": 0})", {"  ab ", " c"}),
      (Tokens{" ab ", "c"}));
  EXPECT_EQ(decode_chain(R"({"type": "Strip", "content": " ", "start": 0, "stop": 2})", {"ab   "}),
            (Tokens{"ab "}));
  EXPECT_EQ(decode_chain(R"({"type": "Strip", "content": " ", "start": 5, "stop": 5})", {"  "}),
            (Tokens{""}));
  EXPECT_EQ(decode_chain(R"({"type": "Replace", "pattern": {"String": "▁"}, "content": " "})",
                         {"▁a▁", "b"}),
            (Tokens{" a ", "b"}));
}

TEST(DecoderTest, SequenceOfTheMetaspaceFixture) {
  const std::string config = R"({"type": "Sequence", "decoders": [
      {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
      {"type": "ByteFallback"}, {"type": "Fuse"},
      {"type": "Strip", "content": " ", "start": 1, "stop": 0}]})";
  EXPECT_EQ(decode_chain(config, {"▁Gr", "<0xC3>", "<0xB6>", "ße", "▁x"}), (Tokens{"Größe x"}));
}

TEST(DecoderTest, BpeSuffix) {
  EXPECT_EQ(
      decode_chain(R"({"type": "BPEDecoder", "suffix": "</w>"})", {"hel", "lo</w>", "you</w>"}),
      (Tokens{"hel", "lo ", "you"}));
}

TEST(DecoderTest, ConfigErrors) {
  EXPECT_THROW(decode_chain(R"({"type": "Strip", "content": "  ", "start": 1, "stop": 0})", {}),
               FileError);
  EXPECT_THROW(decode_chain(R"({"type": "Strip", "content": " ", "start": -1})", {}), FileError);
  EXPECT_THROW(decode_chain(R"({"type": "CTC"})", {}), Unsupported);
}

}  // namespace
}  // namespace falcon::text
