#include "text/added_vocabulary.h"

#include <algorithm>

#include "text/normalizer.h"
#include "text/unicode.h"
#include "text/utf8.h"

namespace falcon::text {
namespace {

char32_t last_code_point(std::string_view s) {
  size_t start = s.size() - 1;
  while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
  return next_code_point(s, start);
}

bool ends_with_word_char(std::string_view s) {
  return !s.empty() && is_word_char(last_code_point(s));
}

bool starts_with_word_char(std::string_view s) {
  size_t pos = 0;
  return !s.empty() && is_word_char(next_code_point(s, pos));
}

// Start of the whitespace run that ends `s` (s.size() if none).
size_t trailing_space_start(std::string_view s) {
  size_t end = s.size();
  while (end > 0) {
    size_t start = end - 1;
    while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    size_t pos = start;
    if (!is_white_space(next_code_point(s, pos))) break;
    end = start;
  }
  return end;
}

// Length of the whitespace run that starts `s`.
size_t leading_space_length(std::string_view s) {
  size_t pos = 0;
  while (pos < s.size()) {
    const size_t start = pos;
    if (!is_white_space(next_code_point(s, pos))) return start;
  }
  return pos;
}

}  // namespace

void AddedVocabulary::Trie::insert(std::string_view key, int32_t token_index) {
  if (key.empty()) return;
  first_bytes_[static_cast<unsigned char>(key[0])] = true;
  int32_t node = 0;
  for (const char ch : key) {
    const auto byte = static_cast<unsigned char>(ch);
    auto& children = nodes_[size_t(node)].children;
    auto it = std::lower_bound(children.begin(), children.end(), byte,
                               [](const auto& edge, unsigned char b) { return edge.first < b; });
    if (it != children.end() && it->first == byte) {
      node = it->second;
      continue;
    }
    const auto next = static_cast<int32_t>(nodes_.size());
    children.insert(it, {byte, next});
    nodes_.emplace_back();  // invalidates `children`; not used again
    node = next;
  }
  nodes_[size_t(node)].token_index = token_index;  // a repeated key keeps the last token
}

std::pair<size_t, int32_t> AddedVocabulary::Trie::longest_match(std::string_view text,
                                                                size_t pos) const {
  std::pair<size_t, int32_t> best{0, -1};
  int32_t node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    const auto& children = nodes_[size_t(node)].children;
    const auto it =
        std::lower_bound(children.begin(), children.end(), byte,
                         [](const auto& edge, unsigned char b) { return edge.first < b; });
    if (it == children.end() || it->first != byte) break;
    node = it->second;
    if (nodes_[size_t(node)].token_index >= 0)
      best = {i + 1 - pos, nodes_[size_t(node)].token_index};
  }
  return best;
}

AddedVocabulary::AddedVocabulary(std::vector<AddedToken> tokens, const Normalizer* normalizer)
    : tokens_(std::move(tokens)) {
  // The reference ignores tokens with empty content.
  std::erase_if(tokens_, [](const AddedToken& t) { return t.content.empty(); });
  for (size_t i = 0; i < tokens_.size(); ++i) {
    const AddedToken& t = tokens_[i];
    by_id_[t.id] = i;
    by_content_[t.content] = t.id;
    if (!t.normalized) {
      raw_trie_.insert(t.content, int32_t(i));
    } else {
      std::string form = t.content;
      if (normalizer) normalizer->normalize(form);
      normalized_trie_.insert(form, int32_t(i));
    }
  }
}

const AddedToken* AddedVocabulary::find_by_id(int32_t id) const {
  const auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

std::optional<int32_t> AddedVocabulary::find_by_content(std::string_view content) const {
  const auto it = by_content_.find(std::string(content));
  if (it == by_content_.end()) return std::nullopt;
  return it->second;
}

void AddedVocabulary::split(std::string_view text, bool at_text_start, const Trie& trie,
                            std::vector<TextSplit>& out) const {
  if (text.empty()) return;
  if (trie.empty()) {
    out.push_back({std::string(text), -1, at_text_start});
    return;
  }
  struct Found {
    size_t begin, end;
    int32_t token_index;
  };
  // Non-overlapping leftmost-longest matches, filtered afterwards (as the reference does: a
  // discarded match does not let a shorter overlapping one through).
  std::vector<Found> found;
  for (size_t i = 0; i < text.size();) {
    if (!trie.may_start_with(static_cast<unsigned char>(text[i]))) {
      ++i;
      continue;
    }
    const auto [len, index] = trie.longest_match(text, i);
    if (len == 0) {
      ++i;
      continue;
    }
    found.push_back({i, i + len, index});
    i += len;
  }

  size_t start_offset = 0;
  for (const Found& f : found) {
    const AddedToken& token = tokens_[size_t(f.token_index)];
    size_t start = f.begin, stop = f.end;
    if (token.single_word) {
      const bool space_before = start == 0 || !ends_with_word_char(text.substr(0, start));
      const bool space_after = stop == text.size() || !starts_with_word_char(text.substr(stop));
      if (!space_before || !space_after) continue;
    }
    if (token.lstrip) start = std::max(trailing_space_start(text.substr(0, start)), start_offset);
    if (token.rstrip) stop += leading_space_length(text.substr(stop));
    if (start_offset < start) {
      out.push_back({std::string(text.substr(start_offset, start - start_offset)), -1,
                     at_text_start && start_offset == 0});
    }
    out.push_back({std::string(text.substr(start, stop - start)), token.id, false});
    start_offset = stop;
  }
  if (start_offset < text.size()) {
    out.push_back({std::string(text.substr(start_offset)), -1, at_text_start && start_offset == 0});
  }
}

std::vector<TextSplit> AddedVocabulary::split_raw(std::string_view text) const {
  std::vector<TextSplit> out;
  split(text, true, raw_trie_, out);
  return out;
}

void AddedVocabulary::split_normalized(std::string text, bool at_text_start,
                                       std::vector<TextSplit>& out) const {
  if (normalized_trie_.empty()) {
    if (!text.empty()) out.push_back({std::move(text), -1, at_text_start});
    return;
  }
  split(text, at_text_start, normalized_trie_, out);
}

}  // namespace falcon::text
