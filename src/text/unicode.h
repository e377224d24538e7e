// Unicode character classes and transforms with the meanings the Hugging Face tokenizers library
// gives them (Rust's char methods and `regex` classes), computed with utf8proc.
#pragma once

#include <string>
#include <string_view>

namespace falcon::text {

// Rust char::is_whitespace: the White_Space property.
bool is_white_space(char32_t cp);
// Rust char::is_numeric: general categories Nd, Nl, No.
bool is_numeric(char32_t cp);
// ASCII punctuation (which includes symbols such as $ + < = > ^ ` |) or any P* category.
bool is_punctuation(char32_t cp);
// Unicode \w of Rust's regex: Alphabetic, marks, decimal digits, connector punctuation and
// the join controls.
bool is_word_char(char32_t cp);
// General category M* (Mn, Mc, Me).
bool is_combining_mark(char32_t cp);

enum class NormalForm { NFC, NFD, NFKC, NFKD };
// Normalizes valid UTF-8; ASCII input is returned unchanged without calling utf8proc.
std::string normalize_unicode(std::string_view s, NormalForm form);

// Full lowercase mapping of valid UTF-8 (U+0130 becomes "i\u0307", as in Rust).
std::string to_lower(std::string_view s);

}  // namespace falcon::text
