// Decoding against Pillow: every PNG mode (and bit depth, interlacing, transparency), JPEG
// subsamplings / progressive / gray / CMYK, WebP lossy / lossless / alpha. Pixels, mode, size,
// palette and convert("RGB") must be byte-identical.
#include <gtest/gtest.h>

#include "io/image.h"
#include "io/image_convert.h"
#include "pillow_reference.h"

namespace falcon {
namespace {

struct DecodeReference {
  std::string dir;
  nlohmann::json cases;
};

const DecodeReference& decode_reference() {
  static const DecodeReference ref = [] {
    DecodeReference r;
    r.dir = test::make_temp_dir("decode");
    r.cases = test::run_pillow_reference("decode", r.dir)["cases"];
    return r;
  }();
  return ref;
}

TEST(ImageDecode, MatchesPillowForEveryKind) {
  FALCON_REQUIRE_PILLOW();
  const DecodeReference& ref = decode_reference();
  ASSERT_GE(ref.cases.size(), 30u);
  for (const auto& c : ref.cases) {
    const std::string file = c["file"];
    SCOPED_TRACE(file);
    const io::DecodedImage img = io::decode_image(test::read_bytes(ref.dir + "/" + file));
    EXPECT_EQ(img.mode, test::mode_from_pillow(c["mode"])) << "got " << io::image_mode_name(img.mode);
    ASSERT_EQ(img.width, int(c["width"]));
    ASSERT_EQ(img.height, int(c["height"]));
    const std::string want = test::read_bytes(ref.dir + "/" + std::string(c["pixels"]));
    EXPECT_EQ(test::compare_bytes(img.pixels.data(), img.pixels.size(), want), "") << "pixels";
    if (c.contains("palette")) {
      const std::string pal = test::read_bytes(ref.dir + "/" + std::string(c["palette"]));
      ASSERT_EQ(img.palette.size(), 1024u);
      for (size_t i = 0; i < pal.size(); ++i) {
        ASSERT_EQ(img.palette[i / 3 * 4 + i % 3], uint8_t(pal[i])) << "palette byte " << i;
      }
    }
    const io::DecodedImage rgb = io::convert_to_rgb(img);
    const std::string want_rgb = test::read_bytes(ref.dir + "/" + std::string(c["rgb"]));
    EXPECT_EQ(test::compare_bytes(rgb.pixels.data(), rgb.pixels.size(), want_rgb), "") << "convert(RGB)";
  }
}

TEST(ImageDecode, DetectsFormatByMagicBytes) {
  EXPECT_EQ(io::detect_image_format("\x89PNG\r\n\x1a\n...."), io::ImageFormat::PNG);
  EXPECT_EQ(io::detect_image_format("\xff\xd8\xff\xe0"), io::ImageFormat::JPEG);
  EXPECT_EQ(io::detect_image_format(std::string("RIFF\x10\0\0\0WEBPVP8 ", 16)), io::ImageFormat::WebP);
  EXPECT_THROW(io::detect_image_format(std::string("RIFF\x10\0\0\0WAVEfmt ", 16)), FileError);
  EXPECT_THROW(io::detect_image_format("GIF89a\x01\0\x01\0"), Unsupported);
  EXPECT_THROW(io::detect_image_format(std::string("II*\0", 4)), Unsupported);
  EXPECT_THROW(io::detect_image_format(""), InvalidArgument);
}

TEST(ImageDecode, FixtureImagesHaveTheirModes) {
  const std::string dir = test::fixtures_dir();
  EXPECT_EQ(io::decode_image_file(dir + "/perception-tiny/images/shapes-40x30-rgba.png").mode, io::ImageMode::RGBA);
  EXPECT_EQ(io::decode_image_file(dir + "/ocr-tiny/images/text-300x80-gray.jpg").mode, io::ImageMode::L);
  const io::DecodedImage jpg = io::decode_image_file(dir + "/perception-tiny/images/shapes-90x170.jpg");
  EXPECT_EQ(jpg.mode, io::ImageMode::RGB);
  EXPECT_EQ(jpg.width, 90);
  EXPECT_EQ(jpg.height, 170);
}

}  // namespace
}  // namespace falcon
