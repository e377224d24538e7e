// encode_png: round trip through the decoder, and Pillow reads the same pixels back.
#include "io/png_encode.h"

#include <gtest/gtest.h>

#include <fstream>
#include <random>

#include "io/image.h"
#include "pillow_reference.h"

namespace falcon {
namespace {

std::vector<uint8_t> random_pixels(int w, int h, int channels, uint32_t seed) {
  std::vector<uint8_t> p(size_t(w) * h * channels);
  std::mt19937 rng(seed);
  for (auto& v : p) v = uint8_t(rng());
  return p;
}

constexpr io::ImageMode kModeOfChannels[] = {io::ImageMode::L, io::ImageMode::LA, io::ImageMode::RGB,
                                             io::ImageMode::RGBA};

TEST(PngEncode, RoundTripsEveryChannelCount) {
  for (int channels = 1; channels <= 4; ++channels) {
    const auto pixels = random_pixels(37, 23, channels, uint32_t(channels));
    const io::DecodedImage img = io::decode_image(io::encode_png(pixels.data(), 37, 23, channels));
    EXPECT_EQ(img.mode, kModeOfChannels[channels - 1]);
    EXPECT_EQ(img.width, 37);
    EXPECT_EQ(img.height, 23);
    EXPECT_EQ(img.pixels, pixels) << channels << " channels";
  }
}

TEST(PngEncode, PillowReadsTheSamePixels) {
  FALCON_REQUIRE_PILLOW();
  const std::string dir = test::make_temp_dir("png_encode");
  for (int channels = 1; channels <= 4; ++channels) {
    const auto pixels = random_pixels(19, 41, channels, uint32_t(10 + channels));
    std::ofstream(dir + "/c" + std::to_string(channels) + ".png", std::ios::binary)
        << io::encode_png(pixels.data(), 19, 41, channels);
  }
  const nlohmann::json cases = test::run_pillow_reference("read", dir)["cases"];
  ASSERT_EQ(cases.size(), 4u);
  for (const auto& c : cases) {
    const int channels = std::string(c["file"])[1] - '0';
    EXPECT_EQ(test::mode_from_pillow(c["mode"]), kModeOfChannels[channels - 1]);
    const auto pixels = random_pixels(19, 41, channels, uint32_t(10 + channels));
    const std::string got = test::read_bytes(dir + "/" + std::string(c["pixels"]));
    EXPECT_EQ(test::compare_bytes(pixels.data(), pixels.size(), got), "") << c["file"];
  }
}

TEST(PngEncode, RejectsBadArguments) {
  const uint8_t px[4] = {};
  EXPECT_THROW(io::encode_png(nullptr, 1, 1, 3), InvalidArgument);
  EXPECT_THROW(io::encode_png(px, 0, 1, 3), InvalidArgument);
  EXPECT_THROW(io::encode_png(px, 1, 1, 5), InvalidArgument);
  EXPECT_THROW(io::encode_png(px, 1, -2, 1), InvalidArgument);
}

}  // namespace
}  // namespace falcon
