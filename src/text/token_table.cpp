#include "text/token_table.h"

#include <functional>

#include "core/error.h"

namespace falcon::text {
namespace {

uint32_t hash_of(std::string_view s) {
  const uint64_t h = std::hash<std::string_view>{}(s);
  return uint32_t(h ^ (h >> 32));
}

}  // namespace

void TokenTable::reserve(size_t n) {
  entries_.reserve(n);
  size_t capacity = 16;
  while (capacity < 2 * n) capacity *= 2;  // load factor at most 1/2
  if (capacity > slots_.size()) rehash(capacity);
}

size_t TokenTable::slot_of(std::string_view token, uint32_t hash) const {
  const size_t mask = slots_.size() - 1;
  for (size_t i = hash & mask;; i = (i + 1) & mask) {
    const uint32_t s = slots_[i];
    if (s == 0) return i;
    const Entry& e = entries_[s - 1];
    if (e.hash == hash && e.length == token.size() &&
        std::string_view(arena_).substr(e.offset, e.length) == token) {
      return i;
    }
  }
}

void TokenTable::rehash(size_t capacity) {
  slots_.assign(capacity, 0);
  const size_t mask = capacity - 1;
  for (size_t k = 0; k < entries_.size(); ++k) {
    size_t i = entries_[k].hash & mask;
    while (slots_[i] != 0) i = (i + 1) & mask;
    slots_[i] = uint32_t(k + 1);
  }
}

bool TokenTable::insert(std::string_view token, int32_t id) {
  if (arena_.size() + token.size() > UINT32_MAX || entries_.size() >= UINT32_MAX - 1) {
    throw InvalidArgument("vocabulary too large");
  }
  if (2 * (entries_.size() + 1) > slots_.size()) rehash(slots_.empty() ? 16 : 2 * slots_.size());
  const uint32_t hash = hash_of(token);
  const size_t i = slot_of(token, hash);
  if (slots_[i] != 0) return false;
  entries_.push_back({uint32_t(arena_.size()), uint32_t(token.size()), id, hash});
  arena_.append(token);
  slots_[i] = uint32_t(entries_.size());
  return true;
}

std::optional<int32_t> TokenTable::find(std::string_view token) const {
  if (slots_.empty()) return std::nullopt;
  const uint32_t s = slots_[slot_of(token, hash_of(token))];
  if (s == 0) return std::nullopt;
  return entries_[s - 1].id;
}

}  // namespace falcon::text
