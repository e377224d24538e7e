// The engine's decoding rules against hand-computed values: coord/size bins, de-duplication,
// pixel boxes, greedy and seeded sampling.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <vector>

#include "engine/box_decoding.h"
#include "engine/sampling.h"

namespace falcon {
namespace {

std::vector<float> two_peaks(int bins, int bx, int by) {
  std::vector<float> v(size_t(2 * bins), 0.f);
  v[size_t(bx)] = 5.f;
  v[size_t(bins + by)] = 4.f;
  return v;
}

TEST(BoxDecoding, CoordIsBinOverBins) {
  const auto v = two_peaks(1024, 372, 214);
  const auto xy = decode_coord(v.data(), 2048, {}, 0.01f);
  EXPECT_FLOAT_EQ(xy[0], 372.f / 1024.f);
  EXPECT_FLOAT_EQ(xy[1], 214.f / 1024.f);
}

TEST(BoxDecoding, DuplicateCoordTakesTheNextBins) {
  auto v = two_peaks(1024, 100, 200);
  v[101] = 4.9f;          // second best x
  v[1024 + 600] = 3.9f;   // second best y
  const std::vector<std::array<float, 2>> earlier = {{100.f / 1024, 200.f / 1024}};
  const auto xy = decode_coord(v.data(), 2048, earlier, 0.01f);
  // Masking one x bin and one y bin per attempt: (101, 600) is 0.39 away in y.
  EXPECT_FLOAT_EQ(xy[0], 101.f / 1024);
  EXPECT_FLOAT_EQ(xy[1], 600.f / 1024);
  // Without de-duplication the repeat stands.
  const auto same = decode_coord(v.data(), 2048, earlier, 0.f);
  EXPECT_FLOAT_EQ(same[0], 100.f / 1024);
}

TEST(BoxDecoding, SizeIsLogScaled) {
  // bin 0 -> 1/bins, bin bins-1 -> 1, the middle bin -> about 2^-5 for 1024 bins.
  auto v = two_peaks(1024, 0, 1023);
  auto hw = decode_size(v.data(), 2048);
  EXPECT_NEAR(hw[0], 1.0 / 1024, 1e-9);
  EXPECT_NEAR(hw[1], 1.0, 1e-6);
  v = two_peaks(1024, 511, 0);
  hw = decode_size(v.data(), 2048);
  EXPECT_NEAR(hw[0], std::pow(2.0, 511.0 / 1023.0 * 10.0 - 10.0), 1e-6);
}

TEST(BoxDecoding, PixelBoxOnTheOriginalImage) {
  const auto b = pixel_box(0.5f, 0.25f, 0.5f, 0.2f, 200, 100);  // x, y, h, w
  EXPECT_FLOAT_EQ(b[0], 80.f);
  EXPECT_FLOAT_EQ(b[1], 0.f);
  EXPECT_FLOAT_EQ(b[2], 120.f);
  EXPECT_FLOAT_EQ(b[3], 50.f);
}

TEST(Sampling, GreedyTakesTheFirstMaximum) {
  const std::vector<float> logits = {0.f, 3.f, 1.f, 3.f};
  std::mt19937_64 rng(1);
  EXPECT_EQ(sample_token(logits.data(), 4, 0.f, 0, rng), 1);
}

TEST(Sampling, TopKNeverLeavesTheTopK) {
  std::vector<float> logits(100);
  for (int i = 0; i < 100; ++i) logits[size_t(i)] = float(i % 10);
  std::mt19937_64 rng(7);
  std::map<int, int> seen;
  for (int i = 0; i < 2000; ++i) ++seen[sample_token(logits.data(), 100, 1.0f, 3, rng)];
  for (const auto& [tok, n] : seen) EXPECT_EQ(logits[size_t(tok)], 9.f) << tok;  // the three 9s
  EXPECT_EQ(seen.size(), 3u);
}

TEST(Sampling, TemperatureFollowsTheSoftmax) {
  const std::vector<float> logits = {0.f, std::log(3.f)};  // probabilities 1/4, 3/4
  std::mt19937_64 rng(3);
  int ones = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) ones += sample_token(logits.data(), 2, 1.0f, 0, rng);
  EXPECT_NEAR(double(ones) / n, 0.75, 0.015);
  // Same seed, same draws.
  std::mt19937_64 a(42), b(42);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(sample_token(logits.data(), 2, 0.7f, 0, a), sample_token(logits.data(), 2, 0.7f, 0, b));
}

}  // namespace
}  // namespace falcon
