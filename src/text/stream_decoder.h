// Incremental detokenization for streaming generation: feed ids one at a time and get back text
// only once it is complete UTF-8, with the spacing the full decode would give. Same algorithm as
// the reference's DecodeStream: decode a short window of recent ids and emit what extends the
// text already returned.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "text/tokenizer.h"

namespace falcon {

class TokenStreamDecoder {
 public:
  // `tokenizer` must outlive the decoder.
  explicit TokenStreamDecoder(const Tokenizer& tokenizer, bool skip_special_tokens = false);

  // The text that `id` completes, or nullopt while the pending ids end inside a character.
  // InvalidArgument for an id outside the vocabulary (the decoder state is then unchanged), and
  // when the decoder rewrites text already returned (possible with ByteFallback decoders, whose
  // non-UTF-8 byte runs become one U+FFFD per byte; never with ByteLevel).
  std::optional<std::string> step(int32_t id);
  // Whatever is still held back (an unfinished character comes out as U+FFFD); then resets.
  std::string finish();
  void reset();

 private:
  const Tokenizer* tokenizer_;
  bool skip_special_tokens_;
  std::vector<int32_t> ids_;  // the window: ids behind `prefix_`, then ids not yet emitted
  std::string prefix_;        // decode of ids_[0, prefix_index_)
  size_t prefix_index_ = 0;
};

}  // namespace falcon
