#include "io/mask_rle.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/json_file.h"
#include "core/safetensors.h"
#include "test_support.h"

namespace falcon {
namespace {

// Rebuilds a mask described in coco_rle_cases.json (see coco_rle_reference.py).
std::vector<uint8_t> build_mask(const nlohmann::json& s, int& h, int& w) {
  h = s.at("h").get<int>();
  w = s.at("w").get<int>();
  std::vector<uint8_t> m(static_cast<size_t>(h) * size_t(w));
  const std::string kind = s.at("kind");
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      bool on = false;
      if (kind == "grid") {
        on = s.at("rows")[size_t(y)].get<std::string>()[size_t(x)] == '1';
      } else if (kind == "rect") {
        on = y >= s["y0"].get<int>() && y < s["y1"].get<int>() && x >= s["x0"].get<int>() &&
             x < s["x1"].get<int>();
      } else if (kind == "circle") {
        const int64_t dy = y - s["cy"].get<int>(), dx = x - s["cx"].get<int>(),
                      r = s["r"].get<int>();
        on = dy * dy + dx * dx <= r * r;
      }
      m[size_t(y) * size_t(w) + size_t(x)] = on ? 1 : 0;
    }
  }
  return m;
}

// A second decoder written separately from the library's: walks the string and paints
// runs straight into a column-major buffer.
std::vector<uint8_t> naive_decode(const std::string& s, int h, int w) {
  std::vector<int64_t> cnts;
  size_t p = 0;
  while (p < s.size()) {
    int64_t x = 0;
    int shift = 0;
    int c = 0;
    do {
      c = s[p++] - 48;
      x += int64_t(c & 0x1f) << shift;
      shift += 5;
    } while (c & 0x20);
    if (c & 0x10) x -= int64_t(1) << shift;
    if (cnts.size() > 2) x += cnts[cnts.size() - 2];
    cnts.push_back(x);
  }
  std::vector<uint8_t> colmajor;
  for (size_t i = 0; i < cnts.size(); ++i)
    colmajor.insert(colmajor.end(), size_t(cnts[i]), uint8_t(i & 1));
  std::vector<uint8_t> m(colmajor.size());
  for (size_t i = 0; i < colmajor.size() && h > 0; ++i)
    m[(i % size_t(h)) * size_t(w) + i / size_t(h)] = colmajor[i];
  return m;
}

TEST(MaskRle, MatchesIndependentPythonReference) {
  const nlohmann::json cases = read_json_file(test::tests_dir() + "/io/coco_rle_cases.json");
  ASSERT_GE(cases.size(), 10u);
  for (const auto& c : cases) {
    int h = 0, w = 0;
    const std::vector<uint8_t> mask = build_mask(c.at("shape"), h, w);
    const std::string want = c.at("string");
    SCOPED_TRACE(std::to_string(h) + "x" + std::to_string(w) + " " + want.substr(0, 20));
    if (!c.at("counts").is_null()) {
      EXPECT_EQ(io::mask_to_runs(mask.data(), h, w), c["counts"].get<std::vector<uint32_t>>());
    }
    EXPECT_EQ(io::encode_coco_rle(mask.data(), h, w), want);
    EXPECT_EQ(io::decode_coco_rle(want, h, w), mask);
    int64_t area = 0;
    for (uint8_t v : mask) area += v;
    EXPECT_EQ(area, c.at("area").get<int64_t>());
  }
}

TEST(MaskRle, FixtureMasksRoundTrip) {
  namespace fs = std::filesystem;
  int checked = 0;
  for (const auto& e : fs::directory_iterator(test::fixtures_dir() + "/perception-tiny/cases")) {
    const std::string path = e.path().string() + "/expected.safetensors";
    if (!fs::exists(path)) continue;
    const SafetensorsFile f = SafetensorsFile::open(path);
    if (!f.contains("masks")) continue;
    const Tensor masks = f.view("masks");  // (K, H0, W0) U8
    const int h = int(masks.dim(1)), w = int(masks.dim(2));
    for (int64_t k = 0; k < masks.dim(0); ++k) {
      const uint8_t* m = masks.data<uint8_t>() + k * h * w;
      const std::string s = io::encode_coco_rle(m, h, w);
      const std::vector<uint8_t> want(m, m + int64_t(h) * w);
      EXPECT_EQ(io::decode_coco_rle(s, h, w), want) << path;
      EXPECT_EQ(naive_decode(s, h, w), want) << path;
      ++checked;
    }
  }
  EXPECT_GE(checked, 3);
}

TEST(MaskRle, RandomMasksRoundTripThroughBothDecoders) {
  std::mt19937 rng(5);
  for (int trial = 0; trial < 50; ++trial) {
    const int h = 1 + int(rng() % 40), w = 1 + int(rng() % 40);
    const double density = double(rng() % 100) / 100.0;
    std::vector<uint8_t> m(size_t(h) * size_t(w));
    for (auto& v : m) v = (rng() % 1000) < density * 1000 ? 1 : 0;
    const std::string s = io::encode_coco_rle(m.data(), h, w);
    EXPECT_EQ(io::decode_coco_rle(s, h, w), m);
    EXPECT_EQ(naive_decode(s, h, w), m);
  }
}

TEST(MaskRle, RejectsMalformedStrings) {
  EXPECT_THROW(io::string_to_runs("h"), InvalidArgument);    // continuation bit, then nothing
  EXPECT_THROW(io::string_to_runs("0 "), InvalidArgument);   // below '0'
  EXPECT_THROW(io::string_to_runs("01O"), InvalidArgument);  // 'O' = -1 for the first run
  EXPECT_THROW(io::decode_coco_rle("hm2", 10, 10), InvalidArgument);  // 3000 pixels for 100
}

}  // namespace
}  // namespace falcon
