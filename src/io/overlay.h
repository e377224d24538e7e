// Overlay pictures: the original RGB image with each detection drawn on it (a translucent
// coloured mask with a solid outline, a box, a text label), encoded as PNG.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace falcon::io {

struct OverlayItem {
  std::optional<std::array<float, 4>> box;  // x1, y1, x2, y2 in image pixels (may exceed it)
  const uint8_t* mask = nullptr;            // height x width row-major, non-zero = inside; or null
  std::string label;                        // drawn on a tag at the box's top-left (ASCII)
};

// The i-th item's colour (a fixed palette of 10, then repeating).
std::array<uint8_t, 3> overlay_color(size_t i);

// Draws the items, in order, over a copy of `rgb` (width x height x 3, rows top to bottom):
// masks blended at 45 % with a 1-pixel outline, boxes as outlines, labels in the built-in
// 5x7 font on a filled tag; line width and text size grow with the image. Throws
// InvalidArgument for a bad size or null pixels.
std::vector<uint8_t> draw_overlay(const uint8_t* rgb, int width, int height,
                                  const std::vector<OverlayItem>& items);

// draw_overlay, encoded as an RGB PNG file.
std::string overlay_png(const uint8_t* rgb, int width, int height,
                        const std::vector<OverlayItem>& items);

}  // namespace falcon::io
