// The preprocessing pipeline: the reference's pixel_values for every fixture case, the same
// pipeline run by Pillow + numpy on images of every mode, and its size rules.
#include "io/preprocess.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "core/safetensors.h"
#include "pillow_reference.h"

namespace falcon {
namespace {

namespace fs = std::filesystem;

TEST(Preprocess, MatchesEveryFixtureCase) {
  int cases = 0;
  double worst = 0;
  for (const auto& model : fs::directory_iterator(test::fixtures_dir())) {
    if (!fs::is_directory(model.path() / "cases")) continue;
    for (const auto& dir : fs::directory_iterator(model.path() / "cases")) {
      SCOPED_TRACE(dir.path().string());
      const nlohmann::json c = read_json_file((dir.path() / "case.json").string());
      const nlohmann::json expected_json = read_json_file((dir.path() / "expected.json").string());
      const io::DecodedImage img =
          io::decode_image_file((model.path() / "images" / std::string(c["image"])).string());
      const io::PreprocessedImage got = io::preprocess_image(img, c["min_image_size"], c["max_image_size"]);
      const Tensor want = SafetensorsFile::open((dir.path() / "expected.safetensors").string()).view("pixel_values");
      ASSERT_EQ(got.pixels.shape(), want.shape());
      const double diff = test::max_abs_diff(got.pixels, want);
      EXPECT_LE(diff, 1e-6);
      worst = std::max(worst, diff);
      EXPECT_EQ(got.orig_height, int(expected_json["orig_hw"][0]));
      EXPECT_EQ(got.orig_width, int(expected_json["orig_hw"][1]));
      EXPECT_EQ(got.height, int(expected_json["proc_hw"][0]));
      EXPECT_EQ(got.width, int(expected_json["proc_hw"][1]));
      ++cases;
    }
  }
  EXPECT_GE(cases, 6);
  std::printf("[          ] %d fixture cases, worst max abs diff %g\n", cases, worst);
}

TEST(Preprocess, MatchesPillowPipelineForEveryMode) {
  FALCON_REQUIRE_PILLOW();
  const std::string dir = test::make_temp_dir("preprocess");
  const nlohmann::json cases = test::run_pillow_reference("preprocess", dir)["cases"];
  ASSERT_GE(cases.size(), 100u);
  int refused = 0;
  double worst = 0;
  for (const auto& c : cases) {
    const std::string file = c["file"];
    const int mn = c["min"], mx = c["max"];
    SCOPED_TRACE(file + " [" + std::to_string(mn) + ", " + std::to_string(mx) + "]");
    const io::DecodedImage img = io::decode_image(test::read_bytes(dir + "/" + file));
    if (c.contains("error")) {
      EXPECT_THROW(io::preprocess_image(img, mn, mx), InvalidArgument);
      ++refused;
      continue;
    }
    const io::PreprocessedImage got = io::preprocess_image(img, mn, mx);
    ASSERT_EQ(got.pixels.shape(), (Shape{int64_t(c["height"]), int64_t(c["width"]), 3}));
    const std::string raw = test::read_bytes(dir + "/" + std::string(c["expected"]));
    ASSERT_EQ(raw.size(), size_t(got.pixels.nbytes()));
    std::vector<float> want(got.pixels.numel());
    std::memcpy(want.data(), raw.data(), raw.size());
    const double diff = test::max_abs_diff(got.pixels, Tensor::from_vector(want, got.pixels.shape()));
    EXPECT_LE(diff, 1e-6);
    worst = std::max(worst, diff);
  }
  EXPECT_GT(refused, 0);
  std::printf("[          ] %zu runs, %d refused, worst max abs diff %g\n", cases.size(), refused, worst);
}

TEST(Preprocess, FitWithinBoundsFollowsTheReference) {
  using io::ImageSize;
  EXPECT_EQ(io::fit_within_bounds({200, 120}, 64, 128), (ImageSize{128, 76}));
  EXPECT_EQ(io::fit_within_bounds({100, 120}, 64, 128), (ImageSize{100, 120}));  // already inside
  EXPECT_EQ(io::fit_within_bounds({90, 170}, 64, 160), (ImageSize{84, 160}));
  EXPECT_EQ(io::fit_within_bounds({40, 30}, 64, 128), (ImageSize{85, 64}));    // short side to min
  EXPECT_EQ(io::fit_within_bounds({30, 40}, 64, 128), (ImageSize{64, 85}));
  EXPECT_EQ(io::fit_within_bounds({4000, 3000}, 256, 1024), (ImageSize{1024, 768}));
  EXPECT_EQ(io::fit_within_bounds({10, 1000}, 256, 1024), (ImageSize{10, 1024}));  // min, then max clamp
  EXPECT_THROW(io::fit_within_bounds({10, 10}, 128, 64), InvalidArgument);
  EXPECT_THROW(io::fit_within_bounds({1000, 5}, 20, 40), InvalidArgument);  // 40 x int(0.2) = empty
}

TEST(Preprocess, SmartResizeRoundsHalfToEvenAndBoundsPixels) {
  using io::ImageSize;
  EXPECT_EQ(io::smart_resize_size({72, 88}), (ImageSize{64, 96}));  // 4.5 -> 4, 5.5 -> 6
  EXPECT_EQ(io::smart_resize_size({128, 76}), (ImageSize{128, 80}));
  EXPECT_EQ(io::smart_resize_size({56, 40}), (ImageSize{80, 48}));  // under 56*56: scaled up
  EXPECT_EQ(io::smart_resize_size({1024, 1024}), (ImageSize{992, 992}));  // over 28*28*1280: scaled down
  EXPECT_THROW(io::smart_resize_size({15, 100}), InvalidArgument);
  EXPECT_THROW(io::smart_resize_size({16, 3300}), InvalidArgument);  // ratio over 200
}

TEST(Preprocess, PatchesAreRowMajorWithPixelsInIJChOrder) {
  Tensor pixels = Tensor::empty({32, 48, 3}, DType::F32);
  for (int64_t i = 0; i < pixels.numel(); ++i) pixels.data<float>()[i] = float(i);
  const Tensor patches = io::image_patches(pixels);
  ASSERT_EQ(patches.shape(), (Shape{6, 768}));
  for (int r = 0; r < 2; ++r) {
    for (int c = 0; c < 3; ++c) {
      for (int i = 0; i < 16; ++i) {
        for (int j = 0; j < 16; ++j) {
          for (int ch = 0; ch < 3; ++ch) {
            const float want = pixels.data<float>()[((r * 16 + i) * 48 + c * 16 + j) * 3 + ch];
            ASSERT_EQ(patches.data<float>()[(r * 3 + c) * 768 + (i * 16 + j) * 3 + ch], want);
          }
        }
      }
    }
  }
  EXPECT_THROW(io::image_patches(Tensor::empty({20, 32, 3}, DType::F32)), InvalidArgument);
  EXPECT_THROW(io::image_patches(pixels, 16, DType::F16), InvalidArgument);
}

// BF16 patches (a bf16 model's input) are the F32 patches rounded to nearest even, bit for bit,
// ties and values past bf16's precision included.
TEST(Preprocess, Bf16PatchesAreTheRoundedF32Patches) {
  Tensor pixels = Tensor::empty({32, 16, 3}, DType::F32);
  for (int64_t i = 0; i < pixels.numel(); ++i) {
    pixels.data<float>()[i] = (float(i % 511) - 255.f) / 255.f * (1.f + float(i % 7) * 1e-3f);
  }
  pixels.data<float>()[5] = 1.00390625f;   // 1 + 2^-8: a tie, rounds to even (1.0)
  pixels.data<float>()[6] = -1.01171875f;  // -(1 + 3 * 2^-8): a tie, rounds to even (-1.015625)
  const Tensor f32 = io::image_patches(pixels);
  const Tensor bf16 = io::image_patches(pixels, 16, DType::BF16);
  ASSERT_EQ(bf16.dtype(), DType::BF16);
  ASSERT_EQ(bf16.shape(), f32.shape());
  for (int64_t i = 0; i < f32.numel(); ++i) {
    ASSERT_EQ(bf16.data<uint16_t>()[i], f32_to_bf16(f32.data<float>()[i])) << i;
  }
  EXPECT_EQ(bf16_to_f32(bf16.data<uint16_t>()[5]), 1.0f);
  EXPECT_EQ(bf16_to_f32(bf16.data<uint16_t>()[6]), -1.015625f);
}

TEST(Preprocess, NormalisationIsNumpyFloat32) {
  io::DecodedImage img;
  img.mode = io::ImageMode::RGB;
  img.width = 256;
  img.height = 1;
  for (int v = 0; v < 256; ++v) img.pixels.insert(img.pixels.end(), 3, uint8_t(v));
  const Tensor x = io::normalize_rgb(img);
  const float scale = float(1.0 / 255.0);
  for (int v = 0; v < 256; ++v) {
    volatile float rescaled = float(v) * scale;  // separate roundings, as numpy does
    EXPECT_EQ(x.data<float>()[v * 3], (rescaled - 0.5f) / 0.5f) << v;
  }
  EXPECT_EQ(x.data<float>()[0], -1.0f);
  EXPECT_EQ(x.data<float>()[255 * 3], 1.0f);
}

}  // namespace
}  // namespace falcon
