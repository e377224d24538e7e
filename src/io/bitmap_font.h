// A built-in 5x7 bitmap font for printable ASCII (labels on overlay pictures; no font
// library). Glyphs sit in 6x8 cells: one column and one row of spacing.
#pragma once

#include <cstdint>
#include <string_view>

namespace falcon::io {

constexpr int kGlyphWidth = 5, kGlyphHeight = 7;
constexpr int kCellWidth = 6, kCellHeight = 8;

// Seven rows, top to bottom, of five bits (bit 4 = leftmost pixel). Characters outside
// ' '..'~' (including every byte of a multi-byte UTF-8 sequence) draw as '?'.
const uint8_t* glyph_rows(char c);

// Width in pixels of `text` at `scale` (cells, without the trailing spacing column).
int text_width(std::string_view text, int scale);

}  // namespace falcon::io
