// Pre-tokenizers of tokenizer.json ("pre_tokenizer"): cut normalized text into the pieces the
// model tokenizes independently, and (ByteLevel, Metaspace) rewrite those pieces.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "text/json_field.h"

namespace falcon::text {

struct PreToken {
  std::string text;
  // The piece begins at the first character of the encoded text (Metaspace's "first" scheme
  // prepends only there).
  bool at_text_start = false;
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Replaces `pieces` by their sub-pieces, in order; empty pieces are dropped.
  virtual void pre_tokenize(std::vector<PreToken>& pieces) const = 0;
};

// Builds the pre-tokenizer described by `config` (ByteLevel, Split, Punctuation, Digits,
// Whitespace, WhitespaceSplit, BertPreTokenizer, CharDelimiterSplit, Metaspace, Sequence).
std::unique_ptr<PreTokenizer> parse_pre_tokenizer(const JsonField& config);

// Where Metaspace puts its replacement character in front of a piece.
enum class PrependScheme { First, Never, Always };
// Reads "prepend_scheme" (default always) or the older "add_prefix_space" of a Metaspace
// pre-tokenizer or decoder.
PrependScheme parse_prepend_scheme(const JsonField& config);

// The GPT-2 split regex that ByteLevel applies when use_regex is true.
extern const char* const kGpt2SplitRegex;

}  // namespace falcon::text
