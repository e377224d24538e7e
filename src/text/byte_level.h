// The GPT-2 byte <-> unicode map: every byte gets a printable code point so that byte-level BPE
// vocabularies can be stored as text. Printable Latin-1 bytes map to themselves, the other 68
// bytes to U+0100.. in byte order.
#pragma once

#include <string>
#include <string_view>

namespace falcon::text {

// The code point that stands for `byte`.
char32_t byte_to_unicode(unsigned char byte);
// The byte that code point `cp` stands for, or -1 if `cp` is not in the map.
int unicode_to_byte(char32_t cp);

// Appends the byte-level form of `bytes` (each byte replaced by its code point, UTF-8 encoded).
void append_byte_level(std::string& out, std::string_view bytes);
// Appends the bytes that the byte-level text `token` stands for; returns false (appending
// nothing) if some character of `token` is not in the map.
bool append_bytes_from_byte_level(std::string& out, std::string_view token);

}  // namespace falcon::text
