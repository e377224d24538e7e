// Broken model directories give clear errors that name the file and what is wrong.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/json_file.h"
#include "falcon/engine.h"
#include "test_support.h"

namespace falcon {
namespace {

namespace fs = std::filesystem;

fs::path copy_model(const std::string& name) {
  const fs::path dst = fs::path(::testing::TempDir()) / ("model-" + name);
  fs::remove_all(dst);
  fs::copy(fs::path(test::fixtures_dir()) / "perception-tiny" / "model", dst);
  return dst;
}

std::string load_error(const fs::path& dir) {
  EngineOptions o;
  o.model_dir = dir.string();
  try {
    Engine::load(o);
  } catch (const Error& e) {
    return e.what();
  }
  return "(loaded)";
}

void edit_config(const fs::path& dir, const std::function<void(nlohmann::json&)>& edit) {
  nlohmann::json j = read_json_file((dir / "config.json").string());
  edit(j);
  std::ofstream(dir / "config.json") << j.dump();
}

TEST(ModelLoading, NotADirectory) {
  EXPECT_NE(load_error("/nonexistent/model").find("not a directory"), std::string::npos);
}

TEST(ModelLoading, MissingFileIsNamed) {
  const fs::path d = copy_model("missing");
  fs::remove(d / "tokenizer.json");
  EXPECT_NE(load_error(d).find("missing tokenizer.json"), std::string::npos);
}

TEST(ModelLoading, TruncatedWeights) {
  const fs::path d = copy_model("truncated");
  fs::resize_file(d / "model.safetensors", fs::file_size(d / "model.safetensors") / 2);
  const std::string e = load_error(d);
  EXPECT_NE(e.find("model.safetensors"), std::string::npos) << e;
  EXPECT_NE(e.find("truncated"), std::string::npos) << e;
}

TEST(ModelLoading, ConfigThatDoesNotMatchTheWeights) {
  const fs::path d = copy_model("wrong-dim");
  edit_config(d, [](nlohmann::json& j) { j["ffn_dim"] = 400; });
  const std::string e = load_error(d);
  EXPECT_NE(e.find("layers.0.feed_forward.w13.weight"), std::string::npos) << e;
  EXPECT_NE(e.find("expected [800, 128]"), std::string::npos) << e;
}

TEST(ModelLoading, BadConfigField) {
  const fs::path d = copy_model("bad-field");
  edit_config(d, [](nlohmann::json& j) { j["n_kv_heads"] = 3; });
  EXPECT_NE(load_error(d).find("'n_kv_heads' must divide n_heads"), std::string::npos);
  edit_config(d, [](nlohmann::json& j) { j["dim"] = "large"; });
  EXPECT_NE(load_error(d).find("'dim' must be an integer"), std::string::npos);
  std::ofstream(d / "config.json") << "{ not json";
  EXPECT_NE(load_error(d).find("invalid JSON"), std::string::npos);
}

TEST(ModelLoading, MissingTensorIsNamed) {
  const fs::path d = copy_model("more-layers");
  edit_config(d, [](nlohmann::json& j) { j["n_layers"] = 3; });
  EXPECT_NE(load_error(d).find("missing tensor 'layers.2.attention.wqkv.weight'"), std::string::npos);
}

TEST(ModelLoading, VariantDetection) {
  EngineOptions o;
  o.model_dir = test::fixtures_dir() + "/ocr-tiny/model";
  EXPECT_EQ(Engine::load(o)->info().variant, "ocr");
  o.model_dir = test::fixtures_dir() + "/perception-tiny/model";
  auto e = Engine::load(o);
  EXPECT_EQ(e->info().variant, "perception");
  EXPECT_EQ(e->info().n_kv_heads, 2);
  const fs::path d = copy_model("det-only");
  edit_config(d, [](nlohmann::json& j) { j["do_segmentation"] = false; });
  o.model_dir = d.string();
  auto det = Engine::load(o);
  EXPECT_EQ(det->info().variant, "perception-300m");
  EXPECT_EQ(det->info().supported_tasks, std::vector<std::string>{"detection"});
}

TEST(Requests, RefusedWithAClearError) {
  EngineOptions o;
  o.model_dir = test::fixtures_dir() + "/perception-tiny/model";
  auto engine = Engine::load(o);
  Request r;
  r.task = Task::Detection;
  r.query = "a cat";
  EXPECT_THROW(engine->run(r), InvalidArgument);  // no image
  r.image_bytes = "not an image at all";
  EXPECT_THROW(engine->run(r), Error);
  r.image_bytes = read_binary_file(test::fixtures_dir() + "/perception-tiny/images/shapes-200x120.png");
  r.query = "bad \xff\xfe utf-8";
  EXPECT_THROW(engine->run(r), InvalidArgument);
  r.query = "";
  EXPECT_THROW(engine->run(r), InvalidArgument);
  r.query = "a cat";
  r.task = Task::OcrPlain;
  EXPECT_THROW(engine->run(r), Unsupported);
  r.task = Task::Detection;
  r.sampling.forced_tokens = {70000};
  EXPECT_THROW(engine->run(r), InvalidArgument);
  r.sampling.forced_tokens.clear();
  r.max_image_size = 10;
  EXPECT_THROW(engine->run(r), InvalidArgument);
  r.max_image_size = 0;
  r.sampling.max_new_tokens = 3;
  EXPECT_EQ(engine->run(r).tokens.size(), 3u);  // still usable after the errors
}

}  // namespace
}  // namespace falcon
