// A second query on the same image reuses the image block's KV rows and segmentation
// features, and answers exactly as a fresh engine does.
#include <gtest/gtest.h>

#include "core/json_file.h"
#include "engine/result_json.h"
#include "falcon/engine.h"
#include "test_support.h"

namespace falcon {
namespace {

std::unique_ptr<Engine> load(int cache_entries) {
  EngineOptions o;
  o.model_dir = test::fixtures_dir() + "/perception-tiny/model";
  o.image_cache_entries = cache_entries;
  return Engine::load(o);
}

Request segmentation(const std::string& query, const std::string& image) {
  Request r;
  r.task = Task::Segmentation;
  r.query = query;
  r.image_bytes = read_binary_file(test::fixtures_dir() + "/perception-tiny/images/" + image);
  r.min_image_size = 64;
  r.max_image_size = 128;
  // A fixed object run so that masks are produced whatever the random model prefers.
  r.sampling.forced_tokens = {240, 241, 262, 240, 241, 262, 11};
  return r;
}

nlohmann::json comparable(const Result& r) {
  nlohmann::json j = result_to_json(r);
  j.erase("timings_ms");
  j.erase("cached_tokens");
  return j;
}

TEST(ImageCache, SecondQueryMatchesAFreshEngine) {
  auto cached = load(2);
  auto fresh = load(0);
  const Request a = segmentation("the red circle", "shapes-200x120.png");
  const Request b = segmentation("all the squares", "shapes-200x120.png");
  const Result first = cached->run(a);
  const Result second = cached->run(b);  // same image: prefix and features reused
  EXPECT_EQ(comparable(second), comparable(fresh->run(b)));
  EXPECT_EQ(comparable(first), comparable(fresh->run(a)));
  ASSERT_EQ(second.detections.size(), 2u);
  EXPECT_TRUE(second.detections[0].mask.has_value());
  // The image block (image_cls .. end_of_image: 1 + 4 + 5 * 8 + 1 rows) came from the cache.
  EXPECT_EQ(first.cached_tokens, 0);
  EXPECT_EQ(second.cached_tokens, 46);
}

TEST(ImageCache, OtherImageAndEvictionStillCorrect) {
  auto cached = load(1);
  auto fresh = load(0);
  const Request a = segmentation("a shape", "shapes-40x30-rgba.png");
  const Request b = segmentation("a shape", "shapes-200x120.png");
  cached->run(a);
  cached->run(b);  // evicts a
  EXPECT_EQ(comparable(cached->run(a)), comparable(fresh->run(a)));
  Request c = a;
  c.task = Task::Detection;  // same image, other task: same prefix
  EXPECT_EQ(comparable(cached->run(c)), comparable(fresh->run(c)));
}

// The cache is keyed on the file's bytes: the same picture in a file one byte longer (after
// PNG's end chunk, which decoders ignore) is another entry, and answers as a fresh engine does.
TEST(ImageCache, KeyedOnTheFileBytes) {
  auto cached = load(2);
  auto fresh = load(0);
  const Request a = segmentation("the red circle", "shapes-200x120.png");
  Request longer = segmentation("all the squares", "shapes-200x120.png");
  longer.image_bytes.push_back('\0');
  EXPECT_EQ(cached->run(a).cached_tokens, 0);
  const Result other = cached->run(longer);
  EXPECT_EQ(other.cached_tokens, 0);
  EXPECT_EQ(comparable(other), comparable(fresh->run(longer)));
  Request again = a;
  again.query = "all the squares";
  EXPECT_EQ(cached->run(again).cached_tokens, 46);
}

}  // namespace
}  // namespace falcon

namespace falcon {
namespace {

TEST(Streaming, PiecesAddUpToTheText) {
  EngineOptions o;
  o.model_dir = test::fixtures_dir() + "/ocr-tiny/model";
  auto engine = Engine::load(o);
  Request r;
  r.task = Task::OcrPlain;
  r.image_bytes = read_binary_file(test::fixtures_dir() + "/ocr-tiny/images/text-240x64.png");
  r.sampling.max_new_tokens = 16;
  std::string streamed;
  int pieces = 0;
  r.on_text = [&](std::string_view p) {
    streamed += p;
    ++pieces;
  };
  const Result res = engine->run(r);
  EXPECT_GT(pieces, 1);
  // The result is stripped of surrounding whitespace; the stream is not.
  const auto b = streamed.find_first_not_of(" \t\n\r\f\v"), e = streamed.find_last_not_of(" \t\n\r\f\v");
  EXPECT_EQ(streamed.substr(b, e - b + 1), res.text);
}

}  // namespace
}  // namespace falcon
