// Pattern matching (Oniguruma / literal) and the split behaviours built on it.
#include <gtest/gtest.h>

#include "core/error.h"
#include "text/pattern.h"
#include "text/pre_tokenizer.h"
#include "text/split.h"

namespace falcon::text {
namespace {

std::vector<std::string> match_texts(const Pattern& p, const std::string& text) {
  std::vector<std::string> out;
  for (const Match& m : p.find_all(text)) out.push_back(text.substr(m.begin, m.end - m.begin));
  return out;
}

std::vector<std::string> split_texts(const std::string& text,
                                     const std::vector<Segment>& segments) {
  std::vector<std::string> out;
  for (const Segment& s : segments) out.push_back(text.substr(s.begin, s.end - s.begin));
  return out;
}

TEST(PatternTest, Gpt2RegexSplitsWordsNumbersAndSpaces) {
  const Pattern gpt2 = Pattern::regex(kGpt2SplitRegex);
  EXPECT_EQ(match_texts(gpt2, "Hello world's 1234!!  ok"),
            (std::vector<std::string>{"Hello", " world", "'s", " 1234", "!!", " ", " ok"}));
  // \p{L} is Unicode-aware; trailing spaces before the end stay together.
  EXPECT_EQ(match_texts(gpt2, "Größe  "), (std::vector<std::string>{"Größe", "  "}));
}

TEST(PatternTest, EmptyMatchesFollowTheOnigIterator) {
  // "a*" on "baaac": empty at 0, "aaa", the empty match at 4 right after it is skipped, empty at 5.
  const Pattern p = Pattern::regex("a*");
  const auto m = p.find_all("baaac");
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[0].begin, 0u);
  EXPECT_EQ(m[0].end, 0u);
  EXPECT_EQ(m[1].begin, 1u);
  EXPECT_EQ(m[1].end, 4u);
  EXPECT_EQ(m[2].begin, 5u);
  EXPECT_EQ(m[2].end, 5u);
}

TEST(PatternTest, LiteralMatchesPunctuationVerbatim) {
  const Pattern p = Pattern::literal("$(.*)");
  EXPECT_EQ(match_texts(p, "a$(.*)b$(.*)"), (std::vector<std::string>{"$(.*)", "$(.*)"}));
  EXPECT_TRUE(Pattern::literal("xyz").find_all("abc").empty());
}

TEST(PatternTest, BadRegexIsInvalidArgument) {
  EXPECT_THROW(Pattern::regex("(unclosed"), InvalidArgument);
  EXPECT_THROW(Pattern::regex("\\p{NoSuchProperty}"), InvalidArgument);
}

TEST(SplitTest, BehavioursOnTheReferenceExample) {
  // The reference's documentation example: "the-final--countdown" split on '-'.
  const std::string text = "the-final--countdown";
  const auto segments = segments_from_chars(text, [](char32_t c) { return c == U'-'; });
  using V = std::vector<std::string>;
  EXPECT_EQ(split_texts(text, apply_split_behavior(segments, SplitBehavior::Removed)),
            (V{"the", "final", "countdown"}));
  EXPECT_EQ(split_texts(text, apply_split_behavior(segments, SplitBehavior::Isolated)),
            (V{"the", "-", "final", "-", "-", "countdown"}));
  EXPECT_EQ(split_texts(text, apply_split_behavior(segments, SplitBehavior::MergedWithPrevious)),
            (V{"the-", "final-", "-", "countdown"}));
  EXPECT_EQ(split_texts(text, apply_split_behavior(segments, SplitBehavior::MergedWithNext)),
            (V{"the", "-final", "-", "-countdown"}));
  EXPECT_EQ(split_texts(text, apply_split_behavior(segments, SplitBehavior::Contiguous)),
            (V{"the", "-", "final", "--", "countdown"}));
}

TEST(SplitTest, SegmentsFromMatchesCoverTheText) {
  const std::string text = "ab12cd3";
  const auto segments = segments_from_matches(text, Pattern::regex("[0-9]+").find_all(text));
  ASSERT_EQ(segments.size(), 4u);
  EXPECT_EQ(split_texts(text, segments), (std::vector<std::string>{"ab", "12", "cd", "3"}));
  EXPECT_FALSE(segments[0].is_match);
  EXPECT_TRUE(segments[3].is_match);
  auto inverted = segments;
  invert_segments(inverted);
  EXPECT_EQ(split_texts(text, apply_split_behavior(inverted, SplitBehavior::Removed)),
            (std::vector<std::string>{"12", "3"}));
}

TEST(SplitTest, ParsesBehaviourNames) {
  EXPECT_EQ(parse_split_behavior("MergedWithNext"), SplitBehavior::MergedWithNext);
  EXPECT_THROW(parse_split_behavior("merged"), InvalidArgument);
}

}  // namespace
}  // namespace falcon::text
