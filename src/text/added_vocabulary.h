// Added tokens of tokenizer.json ("added_tokens"): strings such as "<|image|>" that are cut out
// of the text before the model sees it. Tokens with normalized=false are matched on the raw
// text, the others on each normalized piece, leftmost-longest, honouring single_word, lstrip
// and rstrip as the reference does.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace falcon::text {

class Normalizer;

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = true;
  bool special = false;
};

// A piece of the input: an added token (token_id >= 0) or text still to be tokenized.
struct TextSplit {
  std::string text;
  int32_t token_id = -1;
  bool at_text_start = false;  // begins at the first character of the input
};

class AddedVocabulary {
 public:
  AddedVocabulary() = default;
  // `normalizer` (may be null) gives the form that normalized tokens take in normalized text.
  AddedVocabulary(std::vector<AddedToken> tokens, const Normalizer* normalizer);

  // First pass: cuts the non-normalized tokens out of the raw input. Empty pieces are dropped.
  std::vector<TextSplit> split_raw(std::string_view text) const;
  // Second pass: cuts the normalized tokens out of one normalized piece, appending to `out`.
  void split_normalized(std::string text, bool at_text_start, std::vector<TextSplit>& out) const;

  const AddedToken* find_by_id(int32_t id) const;
  std::optional<int32_t> find_by_content(std::string_view content) const;
  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  // A byte trie over token strings for leftmost-longest matching.
  class Trie {
   public:
    void insert(std::string_view key, int32_t token_index);
    bool empty() const { return nodes_.size() <= 1; }
    // Longest key starting at `pos`: (length, token index), or length 0 when none.
    std::pair<size_t, int32_t> longest_match(std::string_view text, size_t pos) const;
    bool may_start_with(unsigned char byte) const { return first_bytes_[byte]; }

   private:
    struct Node {
      std::vector<std::pair<unsigned char, int32_t>> children;  // sorted by byte
      int32_t token_index = -1;
    };
    std::vector<Node> nodes_ = std::vector<Node>(1);
    bool first_bytes_[256] = {};
  };

  void split(std::string_view text, bool at_text_start, const Trie& trie,
             std::vector<TextSplit>& out) const;

  std::vector<AddedToken> tokens_;
  std::unordered_map<int32_t, size_t> by_id_;
  std::unordered_map<std::string, int32_t> by_content_;
  Trie raw_trie_;         // normalized = false
  Trie normalized_trie_;  // normalized = true, keyed by the normalized content
};

}  // namespace falcon::text
