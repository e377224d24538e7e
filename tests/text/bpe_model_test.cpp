#include "text/bpe_model.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace falcon::text {
namespace {

TokenTable vocab_of(const std::vector<std::string>& tokens) {
  TokenTable v;
  for (size_t i = 0; i < tokens.size(); ++i) EXPECT_TRUE(v.insert(tokens[i], int32_t(i)));
  return v;
}

std::vector<int32_t> tokenize(const BpeModel& m, const std::string& piece) {
  std::vector<int32_t> ids;
  m.tokenize(piece, ids);
  return ids;
}

TEST(BpeModelTest, MergesByRankNotByPosition) {
  // Ranks: "b c" (0) before "a b" (1). "abc" -> a + bc, even though "a b" is leftmost.
  const BpeModel m(vocab_of({"a", "b", "c", "bc", "ab"}), {{"b", "c"}, {"a", "b"}}, {});
  EXPECT_EQ(tokenize(m, "abc"), (std::vector<int32_t>{0, 3}));
  // Swapping the ranks gives ab + c.
  const BpeModel m2(vocab_of({"a", "b", "c", "bc", "ab"}), {{"a", "b"}, {"b", "c"}}, {});
  EXPECT_EQ(tokenize(m2, "abc"), (std::vector<int32_t>{4, 2}));
}

TEST(BpeModelTest, EqualRanksMergeLeftmostFirst) {
  // "aaa" with the single merge "a a": the left pair merges first -> aa + a.
  const BpeModel m(vocab_of({"a", "aa"}), {{"a", "a"}}, {});
  EXPECT_EQ(tokenize(m, "aaa"), (std::vector<int32_t>{1, 0}));
  EXPECT_EQ(tokenize(m, "aaaa"), (std::vector<int32_t>{1, 1}));
}

TEST(BpeModelTest, MergesChainIntoLongerTokens) {
  const BpeModel m(vocab_of({"l", "o", "w", "e", "r", "lo", "low", "er", "lower"}),
                   {{"l", "o"}, {"lo", "w"}, {"e", "r"}, {"low", "er"}}, {});
  EXPECT_EQ(tokenize(m, "lower"), (std::vector<int32_t>{8}));
  EXPECT_EQ(tokenize(m, "lowlow"), (std::vector<int32_t>{6, 6}));
  EXPECT_EQ(tokenize(m, "rew"), (std::vector<int32_t>{4, 3, 2}));
  // Cached second call gives the same answer.
  EXPECT_EQ(tokenize(m, "lower"), (std::vector<int32_t>{8}));
}

TEST(BpeModelTest, UnknownCharactersAreDroppedWithoutUnkOrFallback) {
  const BpeModel m(vocab_of({"a", "b"}), {}, {});
  EXPECT_EQ(tokenize(m, "axb"), (std::vector<int32_t>{0, 1}));
}

TEST(BpeModelTest, UnkTokenFusedOrNot) {
  BpeOptions opts;
  opts.unk_token = "<unk>";
  const BpeModel plain(vocab_of({"<unk>", "a"}), {}, opts);
  EXPECT_EQ(tokenize(plain, "xya"), (std::vector<int32_t>{0, 0, 1}));
  opts.fuse_unk = true;
  const BpeModel fused(vocab_of({"<unk>", "a"}), {}, opts);
  EXPECT_EQ(tokenize(fused, "xyaz"), (std::vector<int32_t>{0, 1, 0}));
}

TEST(BpeModelTest, ByteFallbackSpellsMissingCharactersAsBytes) {
  std::vector<std::string> tokens = {"<unk>", "a"};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    tokens.push_back(name);
  }
  BpeOptions opts;
  opts.unk_token = "<unk>";
  opts.byte_fallback = true;
  const BpeModel m(vocab_of(tokens), {}, opts);
  // é = C3 A9 -> <0xC3> <0xA9> (ids 2 + byte).
  EXPECT_EQ(tokenize(m, "a\xC3\xA9"), (std::vector<int32_t>{1, 2 + 0xC3, 2 + 0xA9}));
}

TEST(BpeModelTest, IgnoreMergesTakesWholeVocabularyWords) {
  BpeOptions opts;
  opts.ignore_merges = true;
  // "abc" is in the vocabulary but no merge path leads to it.
  const BpeModel m(vocab_of({"a", "b", "c", "abc"}), {}, opts);
  EXPECT_EQ(tokenize(m, "abc"), (std::vector<int32_t>{3}));
  EXPECT_EQ(tokenize(m, "cab"), (std::vector<int32_t>{2, 0, 1}));
}

TEST(BpeModelTest, ContinuingSubwordPrefixAndSuffix) {
  BpeOptions opts;
  opts.continuing_subword_prefix = "##";
  const BpeModel m(vocab_of({"a", "##b", "##c", "ab", "##bc"}), {{"##b", "##c"}}, opts);
  EXPECT_EQ(tokenize(m, "abc"), (std::vector<int32_t>{0, 4}));

  BpeOptions suffix;
  suffix.end_of_word_suffix = "</w>";
  const BpeModel s(vocab_of({"a", "b</w>", "ab</w>"}), {{"a", "b</w>"}}, suffix);
  EXPECT_EQ(tokenize(s, "ab"), (std::vector<int32_t>{2}));
}

TEST(BpeModelTest, RejectsInconsistentMergesAndIds) {
  EXPECT_THROW(BpeModel(vocab_of({"a", "b"}), {{"a", "b"}}, {}), InvalidArgument);  // "ab" missing
  EXPECT_THROW(BpeModel(vocab_of({"a"}), {{"a", "z"}}, {}), InvalidArgument);
  TokenTable dup;
  dup.insert("a", 0);
  dup.insert("b", 0);
  EXPECT_THROW(BpeModel(dup, {}, {}), InvalidArgument);
}

TEST(TokenTableTest, FindsWhatWasInserted) {
  TokenTable t;
  for (int i = 0; i < 1000; ++i)
    EXPECT_TRUE(t.insert("tok" + std::to_string(i), i));  // grows several times
  EXPECT_FALSE(t.insert("tok7", 99));
  EXPECT_EQ(t.size(), 1000u);
  EXPECT_EQ(t.find("tok7"), 7);
  EXPECT_EQ(t.find("tok999"), 999);
  EXPECT_EQ(t.find("tok1000"), std::nullopt);
  EXPECT_EQ(t.find(""), std::nullopt);
  EXPECT_TRUE(t.insert("", 1000));
  EXPECT_EQ(t.find(""), 1000);
}

TEST(BpeModelTest, FromJsonReadsBothMergeForms) {
  const std::string file = "t.json";
  const nlohmann::json j = nlohmann::json::parse(
      R"({"type": "BPE", "vocab": {"a": 0, "b": 1, "c": 2, "ab": 3, "abc": 4},
          "merges": ["#version: 0.2", "a b", ["ab", "c"]]})");
  const auto m = BpeModel::from_json(JsonField(j, file, "model"));
  EXPECT_EQ(tokenize(*m, "abc"), (std::vector<int32_t>{4}));
  EXPECT_EQ(m->vocab_size(), 5u);
  EXPECT_EQ(m->token_to_id("ab"), 3);
  EXPECT_EQ(m->id_to_token(4), "abc");
  EXPECT_EQ(m->id_to_token(5), std::nullopt);
}

TEST(BpeModelTest, FromJsonErrorsNameTheField) {
  const std::string file = "t.json";
  const auto load = [&](const char* text) {
    const nlohmann::json j = nlohmann::json::parse(text);
    return BpeModel::from_json(JsonField(j, file, "model"));
  };
  try {
    load(R"({"type": "BPE", "vocab": {"a": 0}, "merges": ["a b c"]})");
    FAIL();
  } catch (const FileError& e) {
    EXPECT_NE(std::string(e.what()).find("t.json: field 'model.merges[0]'"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(load(R"({"type": "BPE", "vocab": {"a": "zero"}, "merges": []})"), FileError);
  EXPECT_THROW(load(R"({"type": "BPE", "vocab": {"a": -1}, "merges": []})"), FileError);
  EXPECT_THROW(load(R"({"type": "BPE", "merges": []})"), FileError);
  EXPECT_THROW(load(R"({"type": "WordPiece", "vocab": {}})"), Unsupported);
}

}  // namespace
}  // namespace falcon::text
