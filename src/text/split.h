// Cutting a string at pattern matches: the SplitDelimiterBehavior semantics of the reference
// (what happens to the matched delimiters), shared by the Split, Punctuation, Digits,
// Whitespace and Metaspace pre-tokenizers.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "text/pattern.h"

namespace falcon::text {

enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

// Parses "Removed", "Isolated", ...; throws InvalidArgument for other names.
SplitBehavior parse_split_behavior(const std::string& name);

// A run of the text that either matched the pattern or lies between matches.
struct Segment {
  size_t begin = 0;
  size_t end = 0;
  bool is_match = false;
};

// Segments covering all of `text`, from pattern matches.
std::vector<Segment> segments_from_matches(std::string_view text,
                                           const std::vector<Match>& matches);
// Segments covering all of valid UTF-8 `text`: every character for which `is_delimiter` holds
// is a one-character match.
std::vector<Segment> segments_from_chars(std::string_view text,
                                         const std::function<bool(char32_t)>& is_delimiter);
void invert_segments(std::vector<Segment>& segments);

// The [begin, end) ranges kept under `behavior`, in order (some may be empty).
std::vector<Segment> apply_split_behavior(const std::vector<Segment>& segments,
                                          SplitBehavior behavior);

}  // namespace falcon::text
