#include "text/stream_decoder.h"

#include "core/error.h"
#include "text/utf8.h"

namespace falcon {

TokenStreamDecoder::TokenStreamDecoder(const Tokenizer& tokenizer, bool skip_special_tokens)
    : tokenizer_(&tokenizer), skip_special_tokens_(skip_special_tokens) {}

std::optional<std::string> TokenStreamDecoder::step(int32_t id) {
  if (prefix_.empty() && !ids_.empty()) {
    std::string new_prefix = tokenizer_->decode(ids_, skip_special_tokens_);
    if (!text::ends_with_replacement_char(new_prefix)) {
      prefix_ = std::move(new_prefix);
      prefix_index_ = ids_.size();
    }
  }
  ids_.push_back(id);
  std::string full;
  try {
    full = tokenizer_->decode(ids_, skip_special_tokens_);
  } catch (...) {
    ids_.pop_back();
    throw;
  }
  // Text ending in U+FFFD may be a character whose remaining bytes come with the next ids.
  if (full.size() <= prefix_.size() || text::ends_with_replacement_char(full)) return std::nullopt;
  if (full.compare(0, prefix_.size(), prefix_) != 0) {
    // ByteFallback does this: a run of <0xNN> tokens that is not UTF-8 becomes one U+FFFD per
    // byte, including bytes already emitted as text.
    throw InvalidArgument("stream decode: token " + std::to_string(id) +
                          " changes text already emitted ('" + prefix_ + "' became '" + full +
                          "')");
  }
  std::string new_text = full.substr(prefix_.size());
  // Keep only the ids behind the new text as context for the next step.
  const size_t new_prefix_index = ids_.size() - prefix_index_;
  ids_.erase(ids_.begin(), ids_.begin() + std::ptrdiff_t(prefix_index_));
  prefix_ = tokenizer_->decode(ids_, skip_special_tokens_);
  prefix_index_ = new_prefix_index;
  return new_text;
}

std::string TokenStreamDecoder::finish() {
  const std::string full = tokenizer_->decode(ids_, skip_special_tokens_);
  std::string rest;
  if (full.size() > prefix_.size() && full.compare(0, prefix_.size(), prefix_) == 0) {
    rest = full.substr(prefix_.size());
  }
  reset();
  return rest;
}

void TokenStreamDecoder::reset() {
  ids_.clear();
  prefix_.clear();
  prefix_index_ = 0;
}

}  // namespace falcon
