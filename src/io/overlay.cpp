#include "io/overlay.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "io/bitmap_font.h"
#include "io/png_encode.h"

namespace falcon::io {
namespace {

// Matplotlib's "tab10": distinct, readable on photos.
constexpr uint8_t kPalette[10][3] = {
    {31, 119, 180}, {255, 127, 14},  {44, 160, 44},   {214, 39, 40},  {148, 103, 189},
    {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207}};
constexpr int kMaskAlpha = 115;  // of 256: 45 %

class Canvas {
 public:
  Canvas(std::vector<uint8_t>& px, int w, int h) : px_(px), w_(w), h_(h) {}

  void set(int x, int y, const std::array<uint8_t, 3>& c) {
    if (x < 0 || y < 0 || x >= w_ || y >= h_) return;
    uint8_t* p = &px_[(size_t(y) * size_t(w_) + size_t(x)) * 3];
    p[0] = c[0];
    p[1] = c[1];
    p[2] = c[2];
  }
  void blend(int x, int y, const std::array<uint8_t, 3>& c, int alpha) {
    uint8_t* p = &px_[(size_t(y) * size_t(w_) + size_t(x)) * 3];
    for (int k = 0; k < 3; ++k)
      p[k] = uint8_t((p[k] * (256 - alpha) + c[size_t(k)] * alpha + 128) >> 8);
  }
  void fill(int x0, int y0, int x1, int y1,
            const std::array<uint8_t, 3>& c) {  // [x0, x1) x [y0, y1)
    for (int y = std::max(y0, 0); y < std::min(y1, h_); ++y) {
      for (int x = std::max(x0, 0); x < std::min(x1, w_); ++x) set(x, y, c);
    }
  }
  int width() const { return w_; }
  int height() const { return h_; }

 private:
  std::vector<uint8_t>& px_;
  int w_, h_;
};

void draw_mask(Canvas& cv, const uint8_t* m, const std::array<uint8_t, 3>& c) {
  const int w = cv.width(), h = cv.height();
  auto in = [&](int x, int y) {
    return x >= 0 && y >= 0 && x < w && y < h && m[size_t(y) * size_t(w) + size_t(x)];
  };
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      if (!in(x, y)) continue;
      // Pixels with a 4-neighbour outside the mask form its outline.
      const bool edge = !in(x - 1, y) || !in(x + 1, y) || !in(x, y - 1) || !in(x, y + 1);
      if (edge) {
        cv.set(x, y, c);
      } else {
        cv.blend(x, y, c, kMaskAlpha);
      }
    }
  }
}

void draw_box(Canvas& cv, const std::array<float, 4>& b, int thickness,
              const std::array<uint8_t, 3>& c) {
  if (!(std::isfinite(b[0]) && std::isfinite(b[1]) && std::isfinite(b[2]) && std::isfinite(b[3])))
    return;
  const int lim = 1 << 20;  // keeps absurd coordinates from overflowing int
  const int x0 = int(std::clamp(std::floor(b[0]), float(-lim), float(lim)));
  const int y0 = int(std::clamp(std::floor(b[1]), float(-lim), float(lim)));
  const int x1 = int(std::clamp(std::ceil(b[2]), float(-lim), float(lim)));
  const int y1 = int(std::clamp(std::ceil(b[3]), float(-lim), float(lim)));
  cv.fill(x0, y0, x1, y0 + thickness, c);
  cv.fill(x0, y1 - thickness, x1, y1, c);
  cv.fill(x0, y0, x0 + thickness, y1, c);
  cv.fill(x1 - thickness, y0, x1, y1, c);
}

// A tag filled with the item colour holding the text in black or white (by luminance).
void draw_label(Canvas& cv, const std::string& text, int x, int y, int scale,
                const std::array<uint8_t, 3>& c) {
  if (text.empty()) return;
  const int pad = scale, tag_w = text_width(text, scale) + 2 * pad,
            tag_h = kGlyphHeight * scale + 2 * pad;
  // Above the box when there is room, else inside it; never off the left / top edge.
  int tx = std::clamp(x, 0, std::max(0, cv.width() - tag_w)), ty = y - tag_h;
  if (ty < 0) ty = std::max(0, y);
  cv.fill(tx, ty, tx + tag_w, ty + tag_h, c);
  const int luma = (299 * c[0] + 587 * c[1] + 114 * c[2]) / 1000;
  const std::array<uint8_t, 3> ink =
      luma > 140 ? std::array<uint8_t, 3>{0, 0, 0} : std::array<uint8_t, 3>{255, 255, 255};
  for (size_t i = 0; i < text.size(); ++i) {
    const uint8_t* rows = glyph_rows(text[i]);
    const int gx = tx + pad + int(i) * kCellWidth * scale;
    for (int r = 0; r < kGlyphHeight; ++r) {
      for (int col = 0; col < kGlyphWidth; ++col) {
        if (rows[r] & (0x10 >> col)) {
          cv.fill(gx + col * scale, ty + pad + r * scale, gx + (col + 1) * scale,
                  ty + pad + (r + 1) * scale, ink);
        }
      }
    }
  }
}

}  // namespace

std::array<uint8_t, 3> overlay_color(size_t i) {
  const uint8_t* c = kPalette[i % 10];
  return {c[0], c[1], c[2]};
}

std::vector<uint8_t> draw_overlay(const uint8_t* rgb, int width, int height,
                                  const std::vector<OverlayItem>& items) {
  if (!rgb || width <= 0 || height <= 0) {
    throw InvalidArgument("draw_overlay: bad image " + std::to_string(width) + "x" +
                          std::to_string(height));
  }
  std::vector<uint8_t> px(rgb, rgb + size_t(width) * size_t(height) * 3);
  Canvas cv(px, width, height);
  const int short_side = std::min(width, height);
  const int thickness = std::max(1, short_side / 300);
  const int scale = std::max(1, short_side / 400);
  // Masks first, so boxes and labels stay readable on top of every mask.
  for (size_t i = 0; i < items.size(); ++i) {
    if (items[i].mask) draw_mask(cv, items[i].mask, overlay_color(i));
  }
  for (size_t i = 0; i < items.size(); ++i) {
    if (items[i].box) draw_box(cv, *items[i].box, thickness, overlay_color(i));
  }
  for (size_t i = 0; i < items.size(); ++i) {
    if (!items[i].box || items[i].label.empty()) continue;
    const auto& b = *items[i].box;
    if (!std::isfinite(b[0]) || !std::isfinite(b[1])) continue;
    const int x = int(std::clamp(b[0], -1e6f, 1e6f)), y = int(std::clamp(b[1], -1e6f, 1e6f));
    draw_label(cv, items[i].label, x, y, scale, overlay_color(i));
  }
  return px;
}

std::string overlay_png(const uint8_t* rgb, int width, int height,
                        const std::vector<OverlayItem>& items) {
  const std::vector<uint8_t> px = draw_overlay(rgb, width, height, items);
  return encode_png(px.data(), width, height, 3);
}

}  // namespace falcon::io
