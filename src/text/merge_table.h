// The BPE merge lookup: (left id, right id) -> (rank, merged id), an open-addressing hash table
// with linear probing. It is probed for every adjacent symbol pair while encoding and filled
// with ~65k entries while loading, so it avoids the per-node allocations of unordered_map.
#pragma once

#include <cstdint>
#include <vector>

namespace falcon::text {

class MergeTable {
 public:
  struct Entry {
    uint64_t key = kEmpty;
    uint32_t rank = 0;
    int32_t merged_id = 0;
  };

  void reserve(size_t n) {
    size_t capacity = 16;
    while (capacity < 2 * n) capacity *= 2;  // load factor at most 1/2
    if (capacity > slots_.size()) rehash(capacity);
  }

  // Inserts or overwrites (a repeated pair keeps its last rank, as in the reference).
  void insert(int32_t left, int32_t right, uint32_t rank, int32_t merged_id) {
    if (2 * (size_ + 1) > slots_.size()) rehash(slots_.empty() ? 16 : 2 * slots_.size());
    const uint64_t key = pack(left, right);
    Entry& e = slots_[probe(key)];
    if (e.key == kEmpty) ++size_;
    e = {key, rank, merged_id};
  }

  const Entry* find(int32_t left, int32_t right) const {
    if (slots_.empty()) return nullptr;
    const Entry& e = slots_[probe(pack(left, right))];
    return e.key == kEmpty ? nullptr : &e;
  }

  size_t size() const { return size_; }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t(0);  // ids are non-negative, so never a real key

  static uint64_t pack(int32_t left, int32_t right) {
    return (uint64_t(uint32_t(left)) << 32) | uint32_t(right);
  }

  // Slot holding `key`, or the empty slot where it would go.
  size_t probe(uint64_t key) const {
    const size_t mask = slots_.size() - 1;
    size_t i = size_t((key * 0x9E3779B97F4A7C15ull) >> 32) & mask;
    while (slots_[i].key != kEmpty && slots_[i].key != key) i = (i + 1) & mask;
    return i;
  }

  void rehash(size_t capacity) {
    std::vector<Entry> old = std::move(slots_);
    slots_.assign(capacity, Entry{});
    for (const Entry& e : old) {
      if (e.key != kEmpty) slots_[probe(e.key)] = e;
    }
  }

  std::vector<Entry> slots_;
  size_t size_ = 0;
};

}  // namespace falcon::text
