// UTF-8 helpers: strict validation of input text, code point iteration, and the lossy
// repair used when decoded bytes are not valid UTF-8.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace falcon::text {

// Byte offset of the first byte that does not start a well-formed UTF-8 sequence
// (overlong forms, surrogates and code points above U+10FFFF are ill-formed), or nullopt.
std::optional<size_t> find_invalid_utf8(std::string_view s);

// Throws InvalidArgument naming `what` and the offending byte offset when `s` is not UTF-8.
void require_valid_utf8(std::string_view s, std::string_view what);

// Length in bytes of the sequence whose lead byte is `lead` (1 for a stray byte), for text that
// is known to be valid.
inline size_t utf8_sequence_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead >> 5) == 0x6) return 2;
  if ((lead >> 4) == 0xE) return 3;
  if ((lead >> 3) == 0x1E) return 4;
  return 1;
}

// Decodes the code point starting at `pos` of valid UTF-8 and advances `pos` past it.
char32_t next_code_point(std::string_view s, size_t& pos);

void append_utf8(std::string& out, char32_t cp);

// Number of code points in valid UTF-8.
size_t count_code_points(std::string_view s);

// Replaces every maximal ill-formed subsequence by U+FFFD, the Unicode "substitution of
// maximal subparts" practice (what Rust's String::from_utf8_lossy does).
std::string utf8_lossy(std::string_view bytes);

// True if `s` ends with U+FFFD.
bool ends_with_replacement_char(std::string_view s);

}  // namespace falcon::text
