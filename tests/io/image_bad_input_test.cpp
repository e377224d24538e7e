// Bad input gives the right typed exception, never a crash or a silent answer: empty and
// unknown data, truncation anywhere, corrupt bytes, bad CRCs, declared sizes over the limits.
#include <gtest/gtest.h>

#include <array>
#include <random>

#include "io/image.h"
#include "io/png_encode.h"
#include "pillow_reference.h"

namespace falcon {
namespace {

uint32_t crc32(std::string_view bytes) {
  uint32_t crc = 0xffffffffu;
  for (unsigned char b : bytes) {
    crc ^= b;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

void put_be32(std::string& s, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) s[at + i] = char(v >> (24 - 8 * i));
}

// A PNG's IHDR with another width and height (and a valid CRC).
std::string with_declared_size(std::string png, uint32_t width, uint32_t height) {
  put_be32(png, 16, width);
  put_be32(png, 20, height);
  put_be32(png, 29, crc32(std::string_view(png).substr(12, 17)));
  return png;
}

std::string small_png(int width = 40, int height = 30, int channels = 3) {
  std::vector<uint8_t> pixels(size_t(width) * height * channels);
  std::mt19937 rng(7);
  for (auto& p : pixels) p = uint8_t(rng());
  return io::encode_png(pixels.data(), width, height, channels);
}

std::string fixture_jpeg() {
  return test::read_bytes(test::fixtures_dir() + "/perception-tiny/images/shapes-90x170.jpg");
}

// Decoding either succeeds with a consistent image or throws one of the engine's errors.
void expect_clean_outcome(std::string_view bytes, const std::string& what) {
  try {
    const io::DecodedImage img = io::decode_image(bytes);
    ASSERT_EQ(img.pixels.size(), img.row_bytes() * size_t(img.height)) << what;
  } catch (const Error&) {
  } catch (const std::exception& e) {
    FAIL() << what << ": unexpected exception type: " << e.what();
  }
}

// Every prefix must be refused except those that already hold the whole image.
void check_truncations(const std::string& file, const std::string& name) {
  const size_t step = file.size() > 4000 ? 5 : 1;
  for (size_t n = 0; n < file.size(); n += (n < 300 ? 1 : step)) {
    expect_clean_outcome(std::string_view(file).substr(0, n), name + " cut at " + std::to_string(n));
  }
}

void check_corruptions(const std::string& file, const std::string& name, uint32_t seed) {
  std::mt19937 rng(seed);
  for (int i = 0; i < 300; ++i) {
    std::string bad = file;
    const size_t at = rng() % bad.size();
    bad[at] = char(rng());
    expect_clean_outcome(bad, name + " byte " + std::to_string(at) + " changed");
  }
}

TEST(ImageBadInput, EmptyAndUnknownData) {
  EXPECT_THROW(io::decode_image(""), InvalidArgument);
  std::string noise(1000, '\0');
  std::mt19937 rng(1);
  for (auto& c : noise) c = char(rng());
  noise[0] = 'x';
  EXPECT_THROW(io::decode_image(noise), FileError);
  EXPECT_THROW(io::decode_image("GIF89a\x10\0\x10\0"), Unsupported);
  EXPECT_THROW(io::decode_image("\x89PNG\r\n\x1a\n"), FileError);  // signature only
  EXPECT_THROW(io::decode_image("\xff\xd8\xff"), FileError);
  EXPECT_THROW(io::decode_image(std::string("RIFF\0\0\0\0WEBP", 12)), FileError);
  EXPECT_THROW(io::decode_image_file(test::fixtures_dir() + "/no-such-image.png"), FileError);
}

TEST(ImageBadInput, TruncatedFilesAreFileErrors) {
  const std::string png = small_png();
  const std::string jpeg = fixture_jpeg();
  for (size_t n : {size_t(8), size_t(20), size_t(33), size_t(60), png.size() / 2, png.size() - 30}) {
    EXPECT_THROW(io::decode_image(std::string_view(png).substr(0, n)), FileError) << "PNG cut at " << n;
  }
  for (size_t n : {size_t(4), size_t(100), jpeg.size() / 3, jpeg.size() / 2, jpeg.size() - 3}) {
    EXPECT_THROW(io::decode_image(std::string_view(jpeg).substr(0, n)), FileError) << "JPEG cut at " << n;
  }
  EXPECT_NO_THROW(io::decode_image(png));
  EXPECT_NO_THROW(io::decode_image(jpeg));
}

TEST(ImageBadInput, EveryTruncationAndCorruptionIsHandled) {
  check_truncations(small_png(), "png");
  check_truncations(fixture_jpeg(), "jpeg");
  check_corruptions(small_png(), "png", 1);
  check_corruptions(fixture_jpeg(), "jpeg", 2);
}

TEST(ImageBadInput, EveryKindOfFileSurvivesTruncationAndCorruption) {
  FALCON_REQUIRE_PILLOW();
  const std::string dir = test::make_temp_dir("bad_input");
  const nlohmann::json cases = test::run_pillow_reference("decode", dir)["cases"];
  ASSERT_GE(cases.size(), 30u);
  uint32_t seed = 10;
  for (const auto& c : cases) {
    const std::string file = c["file"];
    const std::string bytes = test::read_bytes(dir + "/" + file);
    check_truncations(bytes, file);
    check_corruptions(bytes, file, seed++);
  }
}

TEST(ImageBadInput, BadChecksumIsAFileError) {
  std::string png = small_png();
  png[20] ^= 1;  // IHDR height byte, CRC left stale
  EXPECT_THROW(io::decode_image(png), FileError);
}

TEST(ImageBadInput, DeclaredSizeOverTheLimitIsRefusedBeforeDecoding) {
  const std::string png = small_png();
  EXPECT_THROW(io::decode_image(with_declared_size(png, 100000, 100000)), InvalidArgument);
  EXPECT_THROW(io::decode_image(with_declared_size(png, 0, 30)), FileError);
  io::DecodeLimits tight;
  tight.max_pixels = 40 * 30 - 1;
  EXPECT_THROW(io::decode_image(png, tight), InvalidArgument);
  tight.max_pixels = 40 * 30;
  EXPECT_NO_THROW(io::decode_image(png, tight));

  // JPEG: the SOF marker's height and width.
  std::string jpeg = fixture_jpeg();
  size_t sof = 2;
  while (sof + 9 < jpeg.size() && !(uint8_t(jpeg[sof]) == 0xff && (uint8_t(jpeg[sof + 1]) & 0xf0) == 0xc0 &&
                                    uint8_t(jpeg[sof + 1]) != 0xc4)) {
    ++sof;
  }
  ASSERT_LT(sof + 9, jpeg.size());
  jpeg[sof + 5] = char(0xea);  // height 60000
  jpeg[sof + 6] = char(0x60);
  jpeg[sof + 7] = char(0xea);  // width 60000
  jpeg[sof + 8] = char(0x60);
  EXPECT_THROW(io::decode_image(jpeg), InvalidArgument);
}

TEST(ImageBadInput, AspectRatioOverTheLimit) {
  const std::string thin = small_png(1, 201, 1);
  EXPECT_THROW(io::decode_image(thin), InvalidArgument);
  io::DecodeLimits any_shape;
  any_shape.max_aspect_ratio = 0;
  EXPECT_EQ(io::decode_image(thin, any_shape).height, 201);
  EXPECT_EQ(io::decode_image(small_png(1, 200, 1)).height, 200);
}

// Palette indices past PLTE read as opaque black, as in the Pillow the reference locks (12.2);
// a hand-made file because Pillow does not write such palettes.
TEST(ImageBadInput, PaletteIndexPastThePaletteIsBlack) {
  auto chunk = [](const std::string& type, const std::string& data) {
    std::string out(4, '\0');
    put_be32(out, 0, uint32_t(data.size()));
    out += type + data;
    std::string crc(4, '\0');
    put_be32(crc, 0, crc32(type + data));
    return out + crc;
  };
  std::string ihdr(13, '\0');
  put_be32(ihdr, 0, 3);
  put_be32(ihdr, 4, 1);
  ihdr[8] = 8;  // bit depth
  ihdr[9] = 3;  // palette
  // One row: filter 0, indices 0, 1, 200; stored (uncompressed) deflate block.
  const std::string row("\0\0\1\xc8", 4);
  std::string zlib_stream("\x78\x01\x01\x04\x00\xfb\xff", 7);
  zlib_stream += row;
  uint32_t a = 1, b = 0;
  for (unsigned char ch : row) {
    a = (a + ch) % 65521;
    b = (b + a) % 65521;
  }
  std::string adler(4, '\0');
  put_be32(adler, 0, b << 16 | a);
  zlib_stream += adler;
  const std::string png = std::string("\x89PNG\r\n\x1a\n", 8) + chunk("IHDR", ihdr) +
                          chunk("PLTE", std::string("\x0a\x14\x1e\x28\x32\x3c", 6)) + chunk("IDAT", zlib_stream) +
                          chunk("IEND", "");
  const io::DecodedImage img = io::decode_image(png);
  ASSERT_EQ(img.mode, io::ImageMode::P);
  ASSERT_EQ(img.pixels, (std::vector<uint8_t>{0, 1, 200}));
  EXPECT_EQ(img.palette[1 * 4 + 2], 60);
  EXPECT_EQ(img.palette[200 * 4 + 0], 0);
  EXPECT_EQ(img.palette[200 * 4 + 3], 255);
}

}  // namespace
}  // namespace falcon
