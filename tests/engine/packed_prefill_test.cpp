// Requests admitted in the same step are prefilled together in one forward pass (paged KV
// mode): stacked rows through every product, attention per prompt. Each must answer exactly
// as it does alone (on the CPU the products' row results do not depend on the other rows;
// FALCON_TEST_DEVICE=cuda runs it in the fp32 parity mode, where only sum orders may differ).
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <string>

#include "core/json_file.h"
#include "engine/result_json.h"
#include "falcon/engine.h"
#include "test_support.h"

namespace falcon {
namespace {

std::string test_device() {
  const char* d = std::getenv("FALCON_TEST_DEVICE");
  return d && *d ? std::string(d) : std::string("cpu");
}

// Paged mode is what packs prefills (the CPU default is the contiguous cache); the variable is
// read when the engine loads.
std::unique_ptr<Engine> load_paged() {
  const char* old = std::getenv("FALCON_KV_PAGED");
  const std::string saved = old ? old : "";
  setenv("FALCON_KV_PAGED", "1", 1);
  EngineOptions o;
  o.model_dir = test::fixtures_dir() + "/perception-tiny/model";
  o.image_cache_entries = 0;  // every prompt starts from scratch, so every one is packable
  o.max_batch = 8;
  if (test_device() == "cuda") {
    o.device = "cuda";
    o.weight_dtype = "f32";
  }
  auto e = Engine::load(o);
  if (old) {
    setenv("FALCON_KV_PAGED", saved.c_str(), 1);
  } else {
    unsetenv("FALCON_KV_PAGED");
  }
  return e;
}

Request request(Task task, const std::string& query, const std::string& image, int new_tokens, bool forced) {
  Request r;
  r.task = task;
  r.query = query;
  r.image_bytes = read_binary_file(test::fixtures_dir() + "/perception-tiny/images/" + image);
  r.min_image_size = 64;
  r.max_image_size = 128;
  r.sampling.max_new_tokens = new_tokens;
  // A fixed object run so that boxes and masks come out whatever the random model prefers.
  if (forced) r.sampling.forced_tokens = {240, 241, 262, 240, 241, 262, 11};
  return r;
}

nlohmann::json comparable(const Result& r) {
  nlohmann::json j = result_to_json(r);
  j.erase("timings_ms");
  return j;
}

TEST(PackedPrefill, EachPromptAnswersAsAlone) {
  auto engine = load_paged();
  const std::vector<Request> reqs = {
      request(Task::Segmentation, "the red circle", "shapes-200x120.png", 0, true),
      request(Task::Detection, "a shape", "shapes-90x170.jpg", 6, false),
      request(Task::Segmentation, "all the squares", "shapes-40x30-rgba.png", 0, true),
      request(Task::Detection, "everything", "shapes-200x120.png", 4, false),
      request(Task::Detection, "a shape", "shapes-40x30-rgba.png", 0, true),
  };
  std::vector<Result> alone;
  for (const Request& r : reqs) {
    alone.push_back(engine->run(r));
    EXPECT_EQ(alone.back().prefill_batch, 1);
  }
  std::map<Engine::RequestId, size_t> index;
  std::vector<Result> together(reqs.size());
  size_t done = 0;
  for (size_t i = 0; i < reqs.size(); ++i) {
    const Engine::RequestId id =
        engine->submit(reqs[i], [&](Engine::RequestId rid, Result* res, const std::exception_ptr& e) {
          ++done;
          ASSERT_FALSE(e);
          ASSERT_TRUE(res);
          together[index.at(rid)] = *res;
        });
    index[id] = i;
  }
  while (engine->step()) {
  }
  ASSERT_EQ(done, reqs.size());
  for (size_t i = 0; i < reqs.size(); ++i) {
    EXPECT_EQ(together[i].prefill_batch, int(reqs.size())) << "request " << i;
    EXPECT_EQ(comparable(together[i]), comparable(alone[i])) << "request " << i;
  }
  // Masks came out of the packed prompts' image rows.
  ASSERT_FALSE(together[0].detections.empty());
  EXPECT_TRUE(together[0].detections[0].mask.has_value());
}

}  // namespace
}  // namespace falcon
