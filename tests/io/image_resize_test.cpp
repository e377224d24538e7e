// Image.resize with the default filter, bit for bit against Pillow: every mode, up- and
// downscaling, 1-pixel sides, extreme ratios and images over 100x taller than wide.
#include <gtest/gtest.h>

#include "io/image_resize.h"
#include "pillow_reference.h"

namespace falcon {
namespace {

TEST(ImageResize, BitExactWithPillow) {
  FALCON_REQUIRE_PILLOW();
  const std::string dir = test::make_temp_dir("resize");
  const nlohmann::json cases = test::run_pillow_reference("resize", dir)["cases"];
  ASSERT_GE(cases.size(), 200u);
  int checked = 0;
  for (const auto& c : cases) {
    const std::string mode = c["mode"];
    const int in_w = c["in_w"], in_h = c["in_h"], out_w = c["out_w"], out_h = c["out_h"];
    SCOPED_TRACE(mode + " " + std::to_string(in_w) + "x" + std::to_string(in_h) + " -> " + std::to_string(out_w) +
                 "x" + std::to_string(out_h));
    const std::string palette = c.contains("palette") ? test::read_bytes(dir + "/" + std::string(c["palette"])) : "";
    const io::DecodedImage in =
        test::image_from_raw(mode, in_w, in_h, test::read_bytes(dir + "/" + std::string(c["input"])), palette);
    const io::DecodedImage out = io::resize_image(in, out_w, out_h);
    ASSERT_EQ(out.mode, in.mode);
    ASSERT_EQ(out.width, out_w);
    ASSERT_EQ(out.height, out_h);
    const std::string want = test::read_bytes(dir + "/" + std::string(c["expected"]));
    EXPECT_EQ(test::compare_bytes(out.pixels.data(), out.pixels.size(), want), "");
    ++checked;
  }
  EXPECT_EQ(checked, int(cases.size()));
}

TEST(ImageResize, RejectsEmptyTargetsAndUnfilterableModes) {
  io::DecodedImage img;
  img.mode = io::ImageMode::L;
  img.width = img.height = 4;
  img.pixels.assign(16, 7);
  EXPECT_THROW(io::resize_image(img, 0, 3), InvalidArgument);
  EXPECT_THROW(io::resize_image(img, 3, -1), InvalidArgument);
  img.mode = io::ImageMode::P;
  img.palette.assign(1024, 0);
  EXPECT_THROW(io::resize_bicubic(img, 2, 2), InvalidArgument);
  EXPECT_EQ(io::resize_image(img, 2, 2).width, 2);  // nearest for "P"
}

// Pillow 12.2 (the reference's version) stores a 16-bit result as bytes CLIP8(v % 256),
// CLIP8(v >> 8): undershoot reads 0, overshoot keeps its low byte under 0xFF. Values from a
// Python transcription of Resample.c (the installed Pillow may predate "I;16" resampling).
TEST(ImageResize, SixteenBitOvershootKeepsPillow122Bytes) {
  io::DecodedImage img;
  img.mode = io::ImageMode::I16;
  img.width = 6;
  img.height = 1;
  img.pixels.resize(12);
  const uint16_t row[6] = {0, 0, 0, 65535, 65535, 65535};
  for (int i = 0; i < 6; ++i) io::store_u16(&img.pixels[size_t(i) * 2], row[i]);
  const io::DecodedImage out = io::resize_image(img, 10, 1);
  const uint16_t want[10] = {0, 0, 0, 0, 9961, 55574, 65390, 65535, 65535, 65535};
  for (int i = 0; i < 10; ++i) EXPECT_EQ(io::load_u16(&out.pixels[size_t(i) * 2]), want[i]) << i;
}

// A flat image stays flat through both passes: weights are normalised to exactly 1.
TEST(ImageResize, FlatImageStaysFlat) {
  io::DecodedImage img;
  img.mode = io::ImageMode::RGB;
  img.width = 37;
  img.height = 11;
  img.pixels.assign(37 * 11 * 3, 201);
  for (const auto& [w, h] : {std::pair{5, 80}, {100, 3}, {1, 1}, {36, 12}}) {
    const io::DecodedImage out = io::resize_image(img, w, h);
    for (uint8_t v : out.pixels) ASSERT_EQ(v, 201) << w << "x" << h;
  }
}

}  // namespace
}  // namespace falcon
