#include "text/split.h"

#include <algorithm>

#include "core/error.h"
#include "text/utf8.h"

namespace falcon::text {

SplitBehavior parse_split_behavior(const std::string& name) {
  if (name == "Removed") return SplitBehavior::Removed;
  if (name == "Isolated") return SplitBehavior::Isolated;
  if (name == "MergedWithPrevious") return SplitBehavior::MergedWithPrevious;
  if (name == "MergedWithNext") return SplitBehavior::MergedWithNext;
  if (name == "Contiguous") return SplitBehavior::Contiguous;
  throw InvalidArgument("unknown split behavior '" + name + "'");
}

std::vector<Segment> segments_from_matches(std::string_view text,
                                           const std::vector<Match>& matches) {
  if (text.empty()) return {{0, 0, false}};
  std::vector<Segment> out;
  out.reserve(matches.size() * 2 + 1);
  size_t prev = 0;
  for (const Match& m : matches) {
    if (prev != m.begin) out.push_back({prev, m.begin, false});
    out.push_back({m.begin, m.end, true});
    prev = m.end;
  }
  if (prev != text.size()) out.push_back({prev, text.size(), false});
  return out;
}

std::vector<Segment> segments_from_chars(std::string_view text,
                                         const std::function<bool(char32_t)>& is_delimiter) {
  if (text.empty()) return {{0, 0, false}};
  std::vector<Segment> out;
  size_t last_offset = 0, pos = 0;
  while (pos < text.size()) {
    const size_t start = pos;
    const char32_t cp = next_code_point(text, pos);
    if (is_delimiter(cp)) {
      if (last_offset < start) out.push_back({last_offset, start, false});
      out.push_back({start, pos, true});
      last_offset = pos;
    }
  }
  if (text.size() > last_offset) out.push_back({last_offset, text.size(), false});
  return out;
}

void invert_segments(std::vector<Segment>& segments) {
  for (Segment& s : segments) s.is_match = !s.is_match;
}

std::vector<Segment> apply_split_behavior(const std::vector<Segment>& segments,
                                          SplitBehavior behavior) {
  std::vector<Segment> out;
  out.reserve(segments.size());
  bool previous_match = false;
  switch (behavior) {
    case SplitBehavior::Isolated:
      return segments;
    case SplitBehavior::Removed:
      for (const Segment& s : segments) {
        if (!s.is_match) out.push_back(s);
      }
      return out;
    case SplitBehavior::Contiguous:
      // Consecutive segments of the same kind fuse.
      for (const Segment& s : segments) {
        if (s.is_match == previous_match && !out.empty()) {
          out.back().end = s.end;
        } else {
          out.push_back(s);
        }
        previous_match = s.is_match;
      }
      return out;
    case SplitBehavior::MergedWithPrevious:
      for (const Segment& s : segments) {
        if (s.is_match && !previous_match && !out.empty()) {
          out.back().end = s.end;
        } else {
          out.push_back(s);
        }
        previous_match = s.is_match;
      }
      return out;
    case SplitBehavior::MergedWithNext:
      for (auto it = segments.rbegin(); it != segments.rend(); ++it) {
        if (it->is_match && !previous_match && !out.empty()) {
          out.back().begin = it->begin;
        } else {
          out.push_back(*it);
        }
        previous_match = it->is_match;
      }
      std::reverse(out.begin(), out.end());
      return out;
  }
  return out;
}

}  // namespace falcon::text
