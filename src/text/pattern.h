// Split/replace patterns of tokenizer.json: {"Regex": ...} compiled with Oniguruma (the engine
// the reference library uses, so classes such as \s and \p{L} mean the same), or {"String": ...}
// matched literally. Matches are enumerated exactly as the reference iterates them.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace falcon::text {

class JsonField;

struct Match {
  size_t begin = 0;
  size_t end = 0;
};

class Pattern {
 public:
  // Throws InvalidArgument with Oniguruma's message when the regex does not compile.
  static Pattern regex(const std::string& expression);
  static Pattern literal(std::string text);

  // Non-overlapping matches, left to right, in valid UTF-8 `text`. An empty match right after a
  // non-empty one is skipped and the scan then moves one character on (the Rust `onig` crate's
  // find_iter, which the reference uses).
  std::vector<Match> find_all(std::string_view text) const;

 private:
  struct CompiledRegex;
  std::shared_ptr<const CompiledRegex> regex_;  // null for a literal
  std::string literal_;
};

// {"String": "..."} or {"Regex": "..."} from tokenizer.json; FileError naming the field if
// malformed or the regex does not compile.
Pattern parse_pattern(const JsonField& config);

}  // namespace falcon::text
