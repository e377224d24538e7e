// The token string -> id map of a BPE vocabulary: token bytes packed in one arena, looked up
// through an open-addressing index. Loading a 65k vocabulary does ~200k lookups and encoding one
// per character, so this avoids the per-node allocations and pointer chasing of unordered_map.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace falcon::text {

class TokenTable {
 public:
  void reserve(size_t n);
  // Adds `token` with `id`; returns false (keeping the first id) if `token` is already there.
  bool insert(std::string_view token, int32_t id);
  std::optional<int32_t> find(std::string_view token) const;
  size_t size() const { return entries_.size(); }

  // Calls f(token, id) for every entry, in insertion order.
  template <class F>
  void for_each(F&& f) const {
    for (const Entry& e : entries_) f(std::string_view(arena_).substr(e.offset, e.length), e.id);
  }

 private:
  struct Entry {
    uint32_t offset;
    uint32_t length;
    int32_t id;
    uint32_t hash;
  };
  // Index slot: position in entries_ + 1, 0 when empty.
  size_t slot_of(std::string_view token, uint32_t hash) const;
  void rehash(size_t capacity);

  std::string arena_;
  std::vector<Entry> entries_;
  std::vector<uint32_t> slots_;
};

}  // namespace falcon::text
