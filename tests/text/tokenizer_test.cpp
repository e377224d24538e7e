// The Tokenizer pipeline on small hand-built tokenizer.json files: added tokens, templates,
// lookups, errors.
#include "text/tokenizer.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/error.h"
#include "test_support.h"
#include "text/byte_level.h"
#include "text/stream_decoder.h"
#include "text/utf8.h"

namespace falcon {
namespace {

// A byte-level BPE over the 256 byte characters (ids 0..255 in byte order) plus "he" (256) and
// "hello" (257) through merges "h e", "he l", "hel l", "hell o"; ids 258.. are intermediate.
nlohmann::json byte_level_tokenizer() {
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) {
    std::string ch;
    text::append_utf8(ch, text::byte_to_unicode(static_cast<unsigned char>(b)));
    vocab[ch] = b;
  }
  vocab["he"] = 256;
  vocab["hello"] = 257;
  vocab["hel"] = 258;
  vocab["hell"] = 259;
  return {
      {"version", "1.0"},
      {"added_tokens", nlohmann::json::array()},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
      {"post_processor", nullptr},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model",
       {{"type", "BPE"}, {"vocab", vocab}, {"merges", {"h e", "he l", "hel l", "hell o"}}}},
  };
}

nlohmann::json added_token(int id, const std::string& content, bool special, bool lstrip = false,
                           bool rstrip = false, bool single_word = false, bool normalized = false) {
  return {{"id", id},          {"content", content}, {"single_word", single_word},
          {"lstrip", lstrip},  {"rstrip", rstrip},   {"normalized", normalized},
          {"special", special}};
}

Tokenizer load(const nlohmann::json& j) {
  return Tokenizer::from_json(j.dump(), "test-tokenizer.json");
}

std::vector<int32_t> bytes_of(const std::string& s) {
  std::vector<int32_t> ids;
  for (const char c : s) ids.push_back(static_cast<unsigned char>(c));
  return ids;
}

TEST(TokenizerTest, EncodesAndDecodesByteLevel) {
  const Tokenizer tok = load(byte_level_tokenizer());
  EXPECT_EQ(tok.encode("hello"), (std::vector<int32_t>{257}));
  // " hello" is one GPT-2 piece whose first byte is a space: no merge covers "Ġh".
  std::vector<int32_t> want = bytes_of("hi");
  want.push_back(' ');
  want.push_back(257);
  EXPECT_EQ(tok.encode("hi hello"), want);
  EXPECT_EQ(tok.decode(tok.encode("hi hello \xE6\x9D\xB1")), "hi hello \xE6\x9D\xB1");
  EXPECT_EQ(tok.vocab_size(), 260);
  EXPECT_EQ(tok.token_to_id("hello"), 257);
  EXPECT_EQ(tok.token_to_id("nope"), std::nullopt);
  EXPECT_EQ(tok.id_to_token(256), "he");
}

TEST(TokenizerTest, AddedTokensAreCutOutBeforeTheModel) {
  nlohmann::json j = byte_level_tokenizer();
  j["added_tokens"] = {added_token(300, "<|image|>", true), added_token(301, "<|im", true),
                       added_token(302, "hello world", false)};
  const Tokenizer tok = load(j);
  // Leftmost-longest: "<|image|>" wins over its prefix "<|im".
  EXPECT_EQ(tok.encode("<|image|>hello"), (std::vector<int32_t>{300, 257}));
  EXPECT_EQ(tok.encode("<|im"), (std::vector<int32_t>{301}));
  EXPECT_EQ(tok.encode("say hello world"), (std::vector<int32_t>{'s', 'a', 'y', ' ', 302}));
  EXPECT_EQ(tok.vocab_size(), 303);
  EXPECT_TRUE(tok.is_special(300));
  EXPECT_FALSE(tok.is_special(302));
  EXPECT_FALSE(tok.is_special(257));
  EXPECT_EQ(tok.token_to_id("<|image|>"), 300);
  EXPECT_EQ(tok.id_to_token(300), "<|image|>");

  const std::vector<int32_t> ids{300, 257, 302};
  EXPECT_EQ(tok.decode(ids), "<|image|>hellohello world");
  // skip_special_tokens drops only the special ones.
  EXPECT_EQ(tok.decode(ids, true), "hellohello world");
}

TEST(TokenizerTest, AddedTokenStripAndSingleWordFlags) {
  nlohmann::json j = byte_level_tokenizer();
  j["added_tokens"] = {added_token(300, "<mask>", true, /*lstrip=*/true, /*rstrip=*/false),
                       added_token(301, "<sep>", true, false, /*rstrip=*/true),
                       added_token(302, "ab", false, false, false, /*single_word=*/true),
                       added_token(303, "he", false)};
  const Tokenizer tok = load(j);
  // lstrip swallows the spaces before the token, rstrip those after it.
  EXPECT_EQ(tok.encode("a  <mask>b"), (std::vector<int32_t>{'a', 300, 'b'}));
  EXPECT_EQ(tok.encode("a<sep> \t b"), (std::vector<int32_t>{'a', 301, 'b'}));
  // single_word: "ab" matches only when not inside a word.
  EXPECT_EQ(tok.encode("ab said"), (std::vector<int32_t>{302, ' ', 's', 'a', 'i', 'd'}));
  EXPECT_EQ(tok.encode("abx ab."), (std::vector<int32_t>{'a', 'b', 'x', ' ', 302, '.'}));
  // An added token already in the model vocabulary keeps the model's id (256, not 303).
  EXPECT_EQ(tok.token_to_id("he"), 256);
  EXPECT_EQ(tok.encode("he"), (std::vector<int32_t>{256}));
}

TEST(TokenizerTest, NormalizedAddedTokensMatchTheNormalizedText) {
  nlohmann::json j = byte_level_tokenizer();
  j["normalizer"] = {{"type", "Lowercase"}};
  j["added_tokens"] = {added_token(300, "YES", false, false, false, false, /*normalized=*/true),
                       added_token(301, "NO", false)};
  const Tokenizer tok = load(j);
  // "YES" is matched as "yes" in the lowercased text; "NO" (not normalized) only verbatim.
  EXPECT_EQ(tok.encode("Yes"), (std::vector<int32_t>{300}));
  EXPECT_EQ(tok.encode("NO no"), (std::vector<int32_t>{301, ' ', 'n', 'o'}));
}

TEST(TokenizerTest, TemplatePostProcessorAddsBosAndEos) {
  nlohmann::json j = byte_level_tokenizer();
  j["added_tokens"] = {added_token(300, "<s>", true), added_token(301, "</s>", true)};
  j["post_processor"] = {{"type", "TemplateProcessing"},
                         {"single",
                          {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                           {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                           {{"SpecialToken", {{"id", "</s>"}, {"type_id", 0}}}}}},
                         {"pair", nlohmann::json::array()},
                         {"special_tokens",
                          {{"<s>", {{"id", "<s>"}, {"ids", {300}}, {"tokens", {"<s>"}}}},
                           {"</s>", {{"id", "</s>"}, {"ids", {301}}, {"tokens", {"</s>"}}}}}}};
  const Tokenizer tok = load(j);
  EXPECT_EQ(tok.encode("hello", true), (std::vector<int32_t>{300, 257, 301}));
  EXPECT_EQ(tok.encode("hello", false), (std::vector<int32_t>{257}));
  EXPECT_EQ(tok.encode("", true), (std::vector<int32_t>{300, 301}));
  EXPECT_EQ(tok.decode(std::vector<int32_t>{300, 257, 301}, true), "hello");
}

TEST(TokenizerTest, InvalidUtf8InputIsInvalidArgument) {
  const Tokenizer tok = load(byte_level_tokenizer());
  EXPECT_THROW(tok.encode("ok\xC3"), InvalidArgument);
  EXPECT_THROW(tok.encode("\xED\xA0\x80"), InvalidArgument);  // encoded surrogate
  EXPECT_THROW(tok.encode(std::string("a\xFF"
                                      "b",
                                      3)),
               InvalidArgument);
  // NUL is valid UTF-8.
  EXPECT_EQ(tok.encode(std::string("a\0b", 3)), (std::vector<int32_t>{'a', 0, 'b'}));
}

TEST(TokenizerTest, DecodeRejectsUnknownIds) {
  const Tokenizer tok = load(byte_level_tokenizer());
  EXPECT_THROW(tok.decode(std::vector<int32_t>{5, 260}), InvalidArgument);
  EXPECT_THROW(tok.decode(std::vector<int32_t>{-1}), InvalidArgument);
  EXPECT_THROW(tok.id_to_token(1000), InvalidArgument);
  // Decoded bytes that are not UTF-8 come out as U+FFFD.
  EXPECT_EQ(tok.decode(std::vector<int32_t>{0xE6, 0x9D}), "\xEF\xBF\xBD");
}

TEST(TokenizerTest, StreamDecoderWaitsForWholeCharacters) {
  const Tokenizer tok = load(byte_level_tokenizer());
  TokenStreamDecoder stream(tok);
  EXPECT_EQ(stream.step('a'), "a");
  EXPECT_EQ(stream.step(0xE6), std::nullopt);  // first byte of 東
  EXPECT_EQ(stream.step(0x9D), std::nullopt);
  EXPECT_EQ(stream.step(0xB1), "\xE6\x9D\xB1");
  EXPECT_EQ(stream.step(' '), " ");
  EXPECT_EQ(stream.step(257), "hello");
  EXPECT_THROW(stream.step(999), InvalidArgument);
  EXPECT_EQ(stream.step(0xC3), std::nullopt);
  EXPECT_EQ(stream.finish(), "\xEF\xBF\xBD");  // the unfinished é
  EXPECT_EQ(stream.step('z'), "z");            // finish() reset the state
}

TEST(TokenizerTest, ConcurrentEncodesAgree) {
  const Tokenizer tok = load(byte_level_tokenizer());
  std::vector<std::string> texts;
  for (int i = 0; i < 200; ++i) texts.push_back("hello " + std::to_string(i * 7919) + " hellos\n");
  std::vector<std::vector<int32_t>> want;
  for (const auto& t : texts) want.push_back(tok.encode(t));
  // The BPE cache is shared between threads; results must not depend on interleaving.
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int w = 0; w < 4; ++w) {
    threads.emplace_back([&, w] {
      for (int rep = 0; rep < 20; ++rep) {
        for (size_t i = 0; i < texts.size(); ++i)
          mismatches[size_t(w)] += tok.encode(texts[i]) != want[i];
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches, std::vector<int>(4, 0));
}

void expect_file_error(const std::string& json, const std::string& fragment) {
  try {
    Tokenizer::from_json(json, "bad.json");
    ADD_FAILURE() << "expected FileError containing " << fragment;
  } catch (const FileError& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(TokenizerTest, MalformedJsonNamesTheFileAndField) {
  expect_file_error("{\"model\": ", "bad.json: invalid JSON");
  expect_file_error("[1, 2]", "bad.json: field '(root)'");
  expect_file_error("{}", "bad.json: field 'model': missing");

  nlohmann::json j = byte_level_tokenizer();
  j["model"].erase("vocab");
  expect_file_error(j.dump(), "field 'model.vocab': missing");

  j = byte_level_tokenizer();
  j["model"]["merges"].push_back("x yz");
  expect_file_error(j.dump(), "field 'model'");

  j = byte_level_tokenizer();
  j["added_tokens"] = {{{"id", 300}}};
  expect_file_error(j.dump(), "field 'added_tokens[0].content': missing");

  j = byte_level_tokenizer();
  j["added_tokens"] = {added_token(5, "<x>", true)};  // id 5 is the model's byte 0x05
  expect_file_error(j.dump(), "field 'added_tokens[0].id'");

  j = byte_level_tokenizer();
  j["pre_tokenizer"] = {
      {"type", "Split"}, {"pattern", {{"Regex", "(?<"}}}, {"behavior", "Isolated"}};
  expect_file_error(j.dump(), "field 'pre_tokenizer.pattern.Regex'");

  j = byte_level_tokenizer();
  j["decoder"]["type"] = 7;
  expect_file_error(j.dump(), "field 'decoder.type': expected a string");

  j = byte_level_tokenizer();
  j["model"]["type"] = "Unigram";
  EXPECT_THROW(Tokenizer::from_json(j.dump(), "bad.json"), Unsupported);
}

TEST(TokenizerTest, MissingFileIsFileError) {
  EXPECT_THROW(Tokenizer::from_file(test::tests_dir() + "/no/such/tokenizer.json"), FileError);
}

}  // namespace
}  // namespace falcon
