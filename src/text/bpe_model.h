// The BPE model of tokenizer.json: vocabulary, ranked merges, and the merge loop that turns one
// pre-tokenized piece into token ids.
#pragma once

#include <cstdint>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "text/json_field.h"
#include "text/merge_table.h"
#include "text/token_table.h"

namespace falcon::text {

// Hash and equality that let unordered maps keyed by std::string be probed with string_view.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

struct BpeOptions {
  std::optional<std::string> unk_token;
  std::string continuing_subword_prefix;  // empty: none
  std::string end_of_word_suffix;         // empty: none
  bool fuse_unk = false;
  bool byte_fallback = false;  // characters missing from the vocabulary become <0xNN> tokens
  bool ignore_merges = false;  // a piece that is itself in the vocabulary is taken whole
};

class BpeModel {
 public:
  // Merges are applied in list order (rank = index). Throws InvalidArgument, naming the entry,
  // when a merge or the unk token refers to a token missing from the vocabulary or two tokens
  // share an id.
  using MergeList = std::vector<std::pair<std::string_view, std::string_view>>;
  BpeModel(TokenTable vocab, const MergeList& merges, BpeOptions options);

  // Reads {"type": "BPE", "vocab": {...}, "merges": [...], ...}; FileError naming the field.
  static std::unique_ptr<BpeModel> from_json(const JsonField& config);

  // Appends the ids of one pre-tokenized piece.
  void tokenize(std::string_view piece, std::vector<int32_t>& out) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  // The token with this id, or nullopt.
  std::optional<std::string_view> id_to_token(int32_t id) const;
  size_t vocab_size() const { return vocab_.size(); }
  int32_t max_id() const { return static_cast<int32_t>(id_to_token_.size()) - 1; }

 private:
  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
    uint32_t byte_len;  // 0 once merged into its left neighbour
  };

  void merge_symbols(std::vector<Symbol>& symbols) const;
  void split_into_symbols(std::string_view piece, std::vector<Symbol>& symbols) const;
  const MergeTable::Entry* find_merge(int32_t left, int32_t right) const {
    return merges_.find(left, right);
  }

  TokenTable vocab_;
  std::vector<std::string_view> id_to_token_;  // views into vocab_; data() is null for unused ids
  MergeTable merges_;
  BpeOptions options_;
  std::optional<int32_t> unk_id_;
  int32_t byte_fallback_ids_[256];  // id of <0xNN>, or -1

  // Results for recently seen pieces; text repeats words, so most lookups hit.
  static constexpr size_t kCacheCapacity = 10000;
  static constexpr size_t kCacheMaxPieceBytes = 256;
  mutable std::shared_mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> cache_;
};

}  // namespace falcon::text
