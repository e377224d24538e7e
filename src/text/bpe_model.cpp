#include "text/bpe_model.h"

#include <algorithm>
#include <mutex>

#include "core/error.h"
#include "text/utf8.h"

namespace falcon::text {
namespace {

// Ids above this are refused: the id -> token table is dense.
constexpr int64_t kMaxTokenId = int64_t(1) << 24;

std::string byte_fallback_token(unsigned char b) {
  static const char* hex = "0123456789ABCDEF";
  return std::string("<0x") + hex[b >> 4] + hex[b & 15] + ">";
}

}  // namespace

BpeModel::BpeModel(TokenTable vocab, const MergeList& merges, BpeOptions options)
    : vocab_(std::move(vocab)), options_(std::move(options)) {
  int32_t max_id = -1;
  vocab_.for_each([&](std::string_view token, int32_t id) {
    if (id < 0 || id >= kMaxTokenId) {
      throw InvalidArgument("vocab: id " + std::to_string(id) + " of '" + std::string(token) +
                            "' out of range");
    }
    max_id = std::max(max_id, id);
  });
  id_to_token_.assign(size_t(max_id + 1), std::string_view());
  vocab_.for_each([&](std::string_view token, int32_t id) {
    if (id_to_token_[size_t(id)].data() != nullptr) {
      throw InvalidArgument("vocab: tokens '" + std::string(id_to_token_[size_t(id)]) + "' and '" +
                            std::string(token) + "' share id " + std::to_string(id));
    }
    id_to_token_[size_t(id)] = token;
  });

  const size_t prefix_len = options_.continuing_subword_prefix.size();
  merges_.reserve(merges.size());
  std::string merged;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const std::string_view left = merges[rank].first;
    const std::string_view right = merges[rank].second;
    const auto where = [&] {
      return "merges[" + std::to_string(rank) + "] ('" + std::string(left) + "', '" +
             std::string(right) + "')";
    };
    const auto l = token_to_id(left), r = token_to_id(right);
    if (!l || !r) throw InvalidArgument(where() + ": token not in the vocabulary");
    // The right part drops its continuing-subword prefix when glued on.
    if (prefix_len > 0 && !right.starts_with(options_.continuing_subword_prefix)) {
      throw InvalidArgument(where() + ": right part lacks the continuing_subword_prefix");
    }
    merged.assign(left).append(right.substr(prefix_len));
    const auto m = token_to_id(merged);
    if (!m)
      throw InvalidArgument(where() + ": merged token '" + merged + "' not in the vocabulary");
    // A repeated pair keeps its last rank, as in the reference.
    merges_.insert(*l, *r, static_cast<uint32_t>(rank), *m);
  }

  if (options_.unk_token) unk_id_ = token_to_id(*options_.unk_token);
  for (int b = 0; b < 256; ++b) {
    const auto id = options_.byte_fallback
                        ? token_to_id(byte_fallback_token(static_cast<unsigned char>(b)))
                        : std::nullopt;
    byte_fallback_ids_[b] = id ? *id : -1;
  }
}

std::unique_ptr<BpeModel> BpeModel::from_json(const JsonField& config) {
  if (const auto type = config.find("type"); type && type->as_string() != "BPE") {
    type->unsupported("unsupported model '" + type->as_string() + "' (only BPE is implemented)");
  }
  if (const auto dropout = config.find("dropout")) {
    // Dropout only randomises training-time segmentation; inference ignores it (as when 0).
    if (!dropout->json().is_number()) dropout->fail("expected a number");
  }
  BpeOptions options;
  if (const auto unk = config.find("unk_token")) options.unk_token = unk->as_string();
  options.continuing_subword_prefix = config.string_or("continuing_subword_prefix", "");
  options.end_of_word_suffix = config.string_or("end_of_word_suffix", "");
  options.fuse_unk = config.bool_or("fuse_unk", false);
  options.byte_fallback = config.bool_or("byte_fallback", false);
  options.ignore_merges = config.bool_or("ignore_merges", false);

  const JsonField vocab_field = config.at("vocab");
  if (!vocab_field.json().is_object()) vocab_field.fail("expected an object of token: id");
  TokenTable vocab;
  vocab.reserve(vocab_field.json().size());
  for (const auto& [token, id] : vocab_field.json().items()) {
    if (!id.is_number_integer()) vocab_field.at(token).fail("expected an integer id");
    const int64_t v = id.is_number_unsigned()
                          ? int64_t(std::min<uint64_t>(id.get<uint64_t>(), INT64_MAX))
                          : id.get<int64_t>();
    if (v < 0 || v >= kMaxTokenId)
      vocab_field.at(token).fail("id " + std::to_string(v) + " out of range");
    vocab.insert(token, static_cast<int32_t>(v));
  }

  const JsonField merges_field = config.at("merges");
  const size_t n = merges_field.array_size();
  MergeList merges;  // views into the parsed JSON, which outlives the model's construction
  merges.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const nlohmann::json& m = merges_field.json()[i];
    if (m.is_string()) {
      // Legacy form "left right"; "#version" header lines are comments.
      const std::string& line = m.get_ref<const std::string&>();
      if (line.starts_with("#version")) continue;
      const size_t space = line.find(' ');
      if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos) {
        merges_field.at(i).fail("expected \"left right\" with exactly one space");
      }
      const std::string_view view = line;
      merges.emplace_back(view.substr(0, space), view.substr(space + 1));
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      merges.emplace_back(m[0].get_ref<const std::string&>(), m[1].get_ref<const std::string&>());
    } else {
      merges_field.at(i).fail("expected \"left right\" or [left, right]");
    }
  }
  try {
    return std::make_unique<BpeModel>(std::move(vocab), merges, std::move(options));
  } catch (const InvalidArgument& e) {
    config.fail(e.what());
  }
}

std::optional<int32_t> BpeModel::token_to_id(std::string_view token) const {
  return vocab_.find(token);
}

std::optional<std::string_view> BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || size_t(id) >= id_to_token_.size() || id_to_token_[size_t(id)].data() == nullptr) {
    return std::nullopt;
  }
  return id_to_token_[size_t(id)];
}

void BpeModel::split_into_symbols(std::string_view piece, std::vector<Symbol>& symbols) const {
  const bool decorated =
      !options_.continuing_subword_prefix.empty() || !options_.end_of_word_suffix.empty();
  std::string key;
  uint32_t pending_unk_len = 0;  // bytes of unknown characters waiting as one unk (0: none)
  const auto add = [&](int32_t id, uint32_t len) {
    symbols.push_back({id, int32_t(symbols.size()) - 1, int32_t(symbols.size()) + 1, len});
  };
  size_t pos = 0;
  while (pos < piece.size()) {
    const size_t start = pos;
    pos =
        std::min(piece.size(), pos + utf8_sequence_length(static_cast<unsigned char>(piece[pos])));
    const auto len = static_cast<uint32_t>(pos - start);
    std::string_view ch = piece.substr(start, len);
    if (decorated) {
      key.clear();
      if (start > 0) key.append(options_.continuing_subword_prefix);
      key.append(ch);
      if (pos == piece.size()) key.append(options_.end_of_word_suffix);
      ch = key;
    }
    if (const auto id = vocab_.find(ch)) {
      if (pending_unk_len > 0) add(*unk_id_, pending_unk_len), pending_unk_len = 0;
      add(*id, len);
      continue;
    }
    if (options_.byte_fallback && std::all_of(ch.begin(), ch.end(), [&](char c) {
          return byte_fallback_ids_[static_cast<unsigned char>(c)] >= 0;
        })) {
      for (const char c : ch) add(byte_fallback_ids_[static_cast<unsigned char>(c)], 1);
      continue;
    }
    if (options_.unk_token) {
      if (!unk_id_)
        throw InvalidArgument("BPE: unk_token '" + *options_.unk_token +
                              "' is not in the vocabulary");
      if (pending_unk_len > 0 && !options_.fuse_unk)
        add(*unk_id_, pending_unk_len), pending_unk_len = 0;
      pending_unk_len += len;
    }
    // Without unk_token or byte fallback the reference drops the character; so do we.
  }
  if (pending_unk_len > 0) add(*unk_id_, pending_unk_len);
  if (!symbols.empty()) symbols.back().next = -1;
}

void BpeModel::merge_symbols(std::vector<Symbol>& symbols) const {
  struct Candidate {
    uint32_t rank;
    int32_t pos;
    int32_t new_id;
  };
  // Min-heap on (rank, position): the best-ranked merge first, leftmost among equals.
  const auto worse = [](const Candidate& a, const Candidate& b) {
    return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
  };
  std::vector<Candidate> heap;
  heap.reserve(symbols.size());
  for (size_t i = 0; i + 1 < symbols.size(); ++i) {
    if (const MergeTable::Entry* m = find_merge(symbols[i].id, symbols[i + 1].id)) {
      heap.push_back({m->rank, int32_t(i), m->merged_id});
    }
  }
  std::make_heap(heap.begin(), heap.end(), worse);
  const auto push = [&](const Candidate& c) {
    heap.push_back(c);
    std::push_heap(heap.begin(), heap.end(), worse);
  };

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), worse);
    const Candidate top = heap.back();
    heap.pop_back();
    Symbol& left = symbols[size_t(top.pos)];
    if (left.byte_len == 0 || left.next < 0) continue;
    const int32_t right_pos = left.next;
    const Symbol right = symbols[size_t(right_pos)];
    // Skip entries made stale by earlier merges around this position.
    const MergeTable::Entry* current = find_merge(left.id, right.id);
    if (!current || current->merged_id != top.new_id) continue;

    left.id = top.new_id;
    left.byte_len += right.byte_len;
    left.next = right.next;
    symbols[size_t(right_pos)].byte_len = 0;
    if (right.next >= 0) symbols[size_t(right.next)].prev = top.pos;

    if (left.prev >= 0) {
      if (const MergeTable::Entry* m = find_merge(symbols[size_t(left.prev)].id, left.id)) {
        push({m->rank, left.prev, m->merged_id});
      }
    }
    if (left.next >= 0) {
      if (const MergeTable::Entry* m = find_merge(left.id, symbols[size_t(left.next)].id)) {
        push({m->rank, top.pos, m->merged_id});
      }
    }
  }
}

void BpeModel::tokenize(std::string_view piece, std::vector<int32_t>& out) const {
  if (piece.empty()) return;
  if (options_.ignore_merges) {
    if (const auto id = token_to_id(piece)) {
      out.push_back(*id);
      return;
    }
  }
  const bool cacheable = piece.size() < kCacheMaxPieceBytes;
  if (cacheable) {
    std::shared_lock lock(cache_mutex_);
    if (const auto it = cache_.find(piece); it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }

  std::vector<Symbol> symbols;
  symbols.reserve(piece.size());
  split_into_symbols(piece, symbols);
  merge_symbols(symbols);
  const size_t first = out.size();
  for (const Symbol& s : symbols) {
    if (s.byte_len != 0) out.push_back(s.id);
  }

  if (cacheable) {
    std::unique_lock lock(cache_mutex_);
    // Once full the cache keeps what it has: the common words come first.
    if (cache_.size() < kCacheCapacity) {
      cache_.emplace(std::string(piece),
                     std::vector<int32_t>(out.begin() + std::ptrdiff_t(first), out.end()));
    }
  }
}

}  // namespace falcon::text
