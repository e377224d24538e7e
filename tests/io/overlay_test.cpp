#include "io/overlay.h"

#include <gtest/gtest.h>

#include <vector>

#include "core/error.h"
#include "io/bitmap_font.h"
#include "io/image.h"

namespace falcon {
namespace {

constexpr int kW = 120, kH = 80;

std::vector<uint8_t> gray_image() {
  return std::vector<uint8_t>(size_t(kW) * kH * 3, 100);
}

std::array<uint8_t, 3> at(const std::vector<uint8_t>& px, int x, int y) {
  const size_t i = (size_t(y) * kW + size_t(x)) * 3;
  return {px[i], px[i + 1], px[i + 2]};
}

TEST(Overlay, NoItemsLeavesTheImage) {
  const auto img = gray_image();
  EXPECT_EQ(io::draw_overlay(img.data(), kW, kH, {}), img);
}

TEST(Overlay, MaskIsBlendedInsideAndOutlined) {
  const auto img = gray_image();
  std::vector<uint8_t> mask(size_t(kW) * kH, 0);
  for (int y = 20; y < 50; ++y) {
    for (int x = 30; x < 70; ++x) mask[size_t(y) * kW + size_t(x)] = 1;
  }
  io::OverlayItem item;
  item.mask = mask.data();
  const auto out = io::draw_overlay(img.data(), kW, kH, {item});
  const auto c = io::overlay_color(0);
  // Interior: 45 % (115/256) of the colour over gray 100, rounded.
  const auto inside = at(out, 50, 35);
  for (int k = 0; k < 3; ++k)
    EXPECT_EQ(inside[size_t(k)], (100 * (256 - 115) + c[size_t(k)] * 115 + 128) >> 8);
  EXPECT_EQ(at(out, 30, 35), c);                                        // outline
  EXPECT_EQ(at(out, 29, 35), (std::array<uint8_t, 3>{100, 100, 100}));  // outside
}

TEST(Overlay, BoxOutlineAndLabelTag) {
  const auto img = gray_image();
  io::OverlayItem item;
  item.box = std::array<float, 4>{20.f, 30.f, 90.f, 70.f};
  item.label = "Hi";
  const auto out = io::draw_overlay(img.data(), kW, kH, {item});
  const auto c = io::overlay_color(0);
  EXPECT_EQ(at(out, 50, 30), c);                                        // top edge
  EXPECT_EQ(at(out, 20, 50), c);                                        // left edge
  EXPECT_EQ(at(out, 89, 50), c);                                        // right edge (x2 exclusive)
  EXPECT_EQ(at(out, 50, 50), (std::array<uint8_t, 3>{100, 100, 100}));  // interior untouched
  // The tag (scale 1: 2 glyphs = 11 px + 2 px padding wide, 9 px high) sits above the box:
  // x 20..32, y 21..29. Its first glyph 'H' has ink at its left column (rows 0-6).
  const auto ink = at(out, 21, 22);
  const auto tag = at(out, 32, 22);
  EXPECT_EQ(tag, c);
  EXPECT_NE(ink, c);
  EXPECT_EQ(io::text_width("Hi", 1), 11);
  // The box may lie partly outside the image (as reference boxes do): no crash, clipped.
  item.box = std::array<float, 4>{-15.f, -6.f, 200.f, 8.f};
  EXPECT_NO_THROW(io::draw_overlay(img.data(), kW, kH, {item}));
}

TEST(Overlay, FontCoversPrintableAscii) {
  // 'I' is a centred bar with serifs; anything non-ASCII draws as '?'.
  const uint8_t* i = io::glyph_rows('I');
  EXPECT_EQ(i[0], 0x0E);
  EXPECT_EQ(i[3], 0x04);
  EXPECT_EQ(io::glyph_rows('\xc3'), io::glyph_rows('?'));
  for (int ch = 0x21; ch <= 0x7e; ++ch) {
    const uint8_t* g = io::glyph_rows(char(ch));
    int ink = 0;
    for (int r = 0; r < io::kGlyphHeight; ++r) ink += g[r] != 0;
    EXPECT_GT(ink, 0) << char(ch);
  }
}

TEST(Overlay, PngDecodesToTheDrawnPixels) {
  const auto img = gray_image();
  io::OverlayItem item;
  item.box = std::array<float, 4>{10.f, 10.f, 60.f, 40.f};
  item.label = "cat 0.9";
  const std::string png = io::overlay_png(img.data(), kW, kH, {item});
  const io::DecodedImage d = io::decode_image(png);
  ASSERT_EQ(d.mode, io::ImageMode::RGB);
  ASSERT_EQ(d.width, kW);
  ASSERT_EQ(d.height, kH);
  EXPECT_EQ(d.pixels, io::draw_overlay(img.data(), kW, kH, {item}));
  EXPECT_THROW(io::draw_overlay(nullptr, kW, kH, {}), InvalidArgument);
}

}  // namespace
}  // namespace falcon
