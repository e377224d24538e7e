// UTF-8 checks for queries, and piecewise text streaming where one token may end in the
// middle of a multi-byte character.
#pragma once

#include <string>
#include <string_view>

namespace falcon::server {

// Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF.
bool is_valid_utf8(std::string_view s);

// Collects streamed bytes and hands back only whole characters: an incomplete sequence at
// the end waits for the next piece; invalid bytes become U+FFFD.
class Utf8Stream {
 public:
  std::string push(std::string_view bytes);
  std::string flush();  // what is left, incomplete sequences as U+FFFD

 private:
  std::string pending_;
};

}  // namespace falcon::server
