#include "text/pattern.h"

#include <oniguruma.h>

#include <mutex>

#include "core/error.h"
#include "text/json_field.h"
#include "text/utf8.h"

namespace falcon::text {
namespace {

std::mutex& onig_compile_mutex() {
  static std::mutex m;
  return m;
}

void initialize_oniguruma() {
  static std::once_flag once;
  std::call_once(once, [] {
    OnigEncoding encodings[] = {ONIG_ENCODING_UTF8};
    onig_initialize(encodings, 1);
  });
}

std::string onig_message(int code, OnigErrorInfo* info) {
  OnigUChar buf[ONIG_MAX_ERROR_MESSAGE_LEN] = {};
  if (info) {
    onig_error_code_to_str(buf, code, info);
  } else {
    onig_error_code_to_str(buf, code);
  }
  return reinterpret_cast<const char*>(buf);
}

// Byte length of the character at `pos`, 1 at the end (the scan then stops).
size_t step_after_empty(std::string_view text, size_t pos) {
  return pos < text.size() ? utf8_sequence_length(static_cast<unsigned char>(text[pos])) : 1;
}

}  // namespace

struct Pattern::CompiledRegex {
  OnigRegex handle = nullptr;
  ~CompiledRegex() {
    if (handle) onig_free(handle);
  }
};

Pattern Pattern::regex(const std::string& expression) {
  initialize_oniguruma();
  auto compiled = std::make_shared<CompiledRegex>();
  OnigErrorInfo info{};
  const auto* begin = reinterpret_cast<const OnigUChar*>(expression.data());
  int rc = 0;
  {
    // onig_new is not thread-safe (global tables); searching is.
    std::lock_guard<std::mutex> lock(onig_compile_mutex());
    rc = onig_new(&compiled->handle, begin, begin + expression.size(), ONIG_OPTION_NONE,
                  ONIG_ENCODING_UTF8, ONIG_SYNTAX_DEFAULT, &info);
  }
  if (rc != ONIG_NORMAL) {
    compiled->handle = nullptr;
    throw InvalidArgument("regex '" + expression + "': " + onig_message(rc, &info));
  }
  Pattern p;
  p.regex_ = std::move(compiled);
  return p;
}

Pattern Pattern::literal(std::string text) {
  Pattern p;
  p.literal_ = std::move(text);
  return p;
}

std::vector<Match> Pattern::find_all(std::string_view text) const {
  std::vector<Match> matches;
  size_t last_end = 0;
  bool skip_next_empty = false;
  std::unique_ptr<OnigRegion, void (*)(OnigRegion*)> region(
      regex_ ? onig_region_new() : nullptr, [](OnigRegion* r) { onig_region_free(r, 1); });
  if (regex_ && !region) throw OutOfMemory("regex search: cannot allocate a region");
  const auto* str = reinterpret_cast<const OnigUChar*>(text.data());
  const auto* str_end = str + text.size();

  while (last_end <= text.size()) {
    size_t begin = 0, end = 0;
    if (regex_) {
      onig_region_clear(region.get());
      const int r = onig_search(regex_->handle, str, str_end, str + last_end, str_end, region.get(),
                                ONIG_OPTION_NONE);
      if (r == ONIG_MISMATCH) break;
      if (r < 0) throw InvalidArgument("regex search failed: " + onig_message(r, nullptr));
      begin = static_cast<size_t>(region->beg[0]);
      end = static_cast<size_t>(region->end[0]);
    } else {
      const size_t at = literal_.empty() ? last_end : text.find(literal_, last_end);
      if (at == std::string_view::npos) break;
      begin = at;
      end = at + literal_.size();
    }
    last_end = end;
    if (begin == end) {
      last_end += step_after_empty(text, last_end);
      if (skip_next_empty) {
        skip_next_empty = false;
        continue;
      }
    } else {
      skip_next_empty = true;
    }
    matches.push_back({begin, end});
  }
  return matches;
}

// {"String": "..."} or {"Regex": "..."}, shared with the Replace decoder and Split.
Pattern parse_pattern(const JsonField& config) {
  if (const auto s = config.find("String")) return Pattern::literal(s->as_string());
  if (const auto r = config.find("Regex")) {
    try {
      return Pattern::regex(r->as_string());
    } catch (const InvalidArgument& e) {
      r->fail(e.what());
    }
  }
  config.fail("expected {\"String\": ...} or {\"Regex\": ...}");
}

}  // namespace falcon::text
