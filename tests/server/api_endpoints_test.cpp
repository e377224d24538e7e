// Every endpoint of a real `falcon serve` on loopback, with the perception fixture model:
// answers in the reference server's shape, with the values the fixtures and the CLI give.
#include "server_harness.h"

namespace falcon::test {
namespace {

class PerceptionServer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new ServerProcess({"--model", perception_model(), "--allow-forced-tokens"});
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static ServerProcess* server_;
};
ServerProcess* PerceptionServer::server_ = nullptr;

json fixture_case(const std::string& model, const std::string& name) {
  return json::parse(read_file(fixtures_dir() + "/" + model + "/cases/" + name + "/case.json"));
}
json fixture_expected(const std::string& model, const std::string& name) {
  return json::parse(read_file(fixtures_dir() + "/" + model + "/cases/" + name + "/expected.json"));
}

// The JSON request for a teacher-forced fixture case.
json case_request(const json& c) {
  return {{"image", {{"base64", b64_file(perception_image(c["image"]))}}},
          {"query", c["query"]},
          {"task", c["task"]},
          {"min_image_size", c["min_image_size"]},
          {"max_image_size", c["max_image_size"]},
          {"forced_tokens", c["forced_tokens_str"]}};
}

// "<|coord|>,<|size|>,..." as the CLI's --force-tokens takes it.
std::string join_tokens(const json& c) {
  std::string out;
  for (const auto& t : c["forced_tokens_str"]) {
    if (!out.empty()) out += ',';
    out += t.get<std::string>();
  }
  return out;
}

TEST_F(PerceptionServer, HealthSaysReadyWithTheModelsTasks) {
  auto c = server_->client();
  const auto r = c.Get("/v1/health");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  const json h = json::parse(r->body);
  EXPECT_EQ(h["status"], "ready");
  EXPECT_EQ(h["supported_tasks"], json({"segmentation", "detection"}));
  EXPECT_EQ(h["model_id"], "tiiuae/Falcon-Perception");
  EXPECT_EQ(h["num_gpus"], 0);
  EXPECT_EQ(h["workers"].size(), 1u);
  EXPECT_EQ(h["workers"][0]["device"], "cpu");
  EXPECT_EQ(h["features"]["forced_tokens"], true);
  EXPECT_EQ(h["features"]["url"], false);
  EXPECT_EQ(r->get_header_value("Access-Control-Allow-Origin"), "*");
}

TEST_F(PerceptionServer, ModelsAndStatus) {
  auto c = server_->client();
  const json m = parse_body(c.Get("/v1/models"));
  EXPECT_EQ(m["object"], "list");
  ASSERT_EQ(m["data"].size(), 1u);
  EXPECT_EQ(m["data"][0]["id"], "falcon-perception");
  EXPECT_EQ(m["data"][0]["object"], "model");
  const json s = parse_body(c.Get("/v1/status"));
  EXPECT_EQ(s["status"], "ready");
  ASSERT_EQ(s["workers"].size(), 1u);
  EXPECT_EQ(s["workers"][0]["status"], "ready");
  EXPECT_EQ(s["workers"][0]["capacity"], 16 + 64);
  EXPECT_EQ(s["max_batch"], 16);
}

TEST_F(PerceptionServer, ServesTheEmbeddedWebPage) {
  auto c = server_->client();
  for (const auto& [path, file, type] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"/", "index.html", "text/html"},
           {"/index.html", "index.html", "text/html"},
           {"/app.js", "app.js", "text/javascript"},
           {"/style.css", "style.css", "text/css"}}) {
    const auto r = c.Get(path.c_str());
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 200) << path;
    EXPECT_EQ(r->get_header_value("Content-Type").rfind(type, 0), 0u) << path;
    EXPECT_EQ(r->body, read_file(tests_dir() + "/../web/" + file)) << path;
  }
  const auto missing = c.Get("/nope.js");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(parse_body(missing)["error"]["code"], "not_found");
  const auto other = c.Get("/v1/nothing");
  ASSERT_TRUE(other);
  EXPECT_EQ(other->status, 404);
  EXPECT_FALSE(parse_body(other)["error"]["message"].get<std::string>().empty());
}

TEST_F(PerceptionServer, CorsPreflight) {
  auto c = server_->client();
  const auto r = c.Options("/v1/predictions");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 204);
  EXPECT_EQ(r->get_header_value("Access-Control-Allow-Origin"), "*");
  EXPECT_NE(r->get_header_value("Access-Control-Allow-Headers").find("Authorization"),
            std::string::npos);
}

TEST_F(PerceptionServer, SegmentationCaseGivesTheFixtureBoxes) {
  const json c = fixture_case("perception-tiny", "seg-shapes-png");
  const json want = fixture_expected("perception-tiny", "seg-shapes-png");
  auto client = server_->client();
  const auto r = post_json(client, case_request(c));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json j = json::parse(r->body);
  EXPECT_EQ(j["id"].get<std::string>().rfind("pred_", 0), 0u);
  EXPECT_EQ(j["model"], "falcon-perception");
  EXPECT_EQ(j["task"], "segmentation");
  EXPECT_EQ(j["query"], "the red circle");
  EXPECT_EQ(j["image_width"], want["orig_hw"][1]);
  EXPECT_EQ(j["image_height"], want["orig_hw"][0]);
  EXPECT_EQ(j["input_tokens"], want["n_input_tokens"]);
  EXPECT_EQ(j["output_tokens"], want["tokens"].size());
  EXPECT_EQ(j["tokens"], want["tokens"]);
  EXPECT_EQ(j["text"], want["decoded_text"]);
  ASSERT_EQ(j["masks"].size(), want["boxes"].size());
  for (size_t i = 0; i < j["masks"].size(); ++i) {
    const json& m = j["masks"][i];
    EXPECT_EQ(m["label"], "object " + std::to_string(i + 1));
    for (int k = 0; k < 4; ++k) {
      EXPECT_NEAR(m["bbox"][k].get<double>(), want["boxes"][i]["bbox_xyxy"][k].get<double>(), 1e-3)
          << i << "," << k;
    }
    ASSERT_TRUE(m["rle"].contains("counts")) << m.dump();
    EXPECT_EQ(m["rle"]["size"], json({120, 200}));
    EXPECT_EQ(m["height"], 120);
    EXPECT_EQ(m["width"], 200);
    // Masks match the reference on >= 99.9 % of the pixels.
    EXPECT_NEAR(double(rle_area(m["rle"]["counts"])), want["mask_areas"][i].get<double>(),
                0.001 * 120 * 200);
  }
  for (const char* k :
       {"inference_time_ms", "queue_ms", "total_time_ms", "tokenize_time_ms", "prefill_time_ms",
        "decode_time_ms", "finalize_time_ms", "avg_decode_batch_size"}) {
    ASSERT_TRUE(j[k].is_number()) << k;
    EXPECT_GE(j[k].get<double>(), 0) << k;
  }
  EXPECT_GT(j["prefill_time_ms"].get<double>(), 0);
  EXPECT_GE(j["total_time_ms"].get<double>(), j["inference_time_ms"].get<double>());
  EXPECT_EQ(j["prefill_tokens"], j["input_tokens"]);
  EXPECT_EQ(j["num_decode_steps"], want["tokens"].size());
  EXPECT_EQ(j["prompt_type"], "text");
  EXPECT_EQ(j["layout_regions"], json::array());
}

TEST_F(PerceptionServer, DetectionCaseGivesTheFixtureBoxesWithoutMasks) {
  const json c = fixture_case("perception-tiny", "det-tall-jpg");
  const json want = fixture_expected("perception-tiny", "det-tall-jpg");
  auto client = server_->client();
  const json j = parse_body(post_json(client, case_request(c)));
  ASSERT_EQ(j["masks"].size(), 2u) << j.dump();
  for (size_t i = 0; i < 2; ++i) {
    const json& m = j["masks"][i];
    EXPECT_EQ(m["rle"], json::object());  // the reference's detection answer
    EXPECT_EQ(m["height"], 170);
    EXPECT_EQ(m["width"], 90);
    for (int k = 0; k < 4; ++k) {
      EXPECT_NEAR(m["bbox"][k].get<double>(), want["boxes"][i]["bbox_xyxy"][k].get<double>(), 1e-3);
    }
  }
}

// The same request through the CLI and through the server gives the same answer.
TEST_F(PerceptionServer, SameAnswerAsTheCli) {
  const json c = fixture_case("perception-tiny", "seg-shapes-png");
  const std::string forced = join_tokens(c);
  const json cli =
      run_cli("segment", {"--model", perception_model(), "--image", perception_image(c["image"]),
                          "--query", c["query"], "--min-image-size", "64", "--max-image-size",
                          "128", "--force-tokens", forced});
  ASSERT_TRUE(cli.is_object()) << "the CLI gave no JSON";
  auto client = server_->client();
  const json j = parse_body(post_json(client, case_request(c)));
  EXPECT_EQ(j["tokens"], cli["tokens"]);
  EXPECT_EQ(j["text"], cli["text"]);
  EXPECT_EQ(j["input_tokens"], cli["input_tokens"]);
  ASSERT_EQ(j["masks"].size(), cli["detections"].size());
  for (size_t i = 0; i < j["masks"].size(); ++i) {
    EXPECT_EQ(j["masks"][i]["bbox"], cli["detections"][i]["bbox"]);
    EXPECT_EQ(j["masks"][i]["rle"], cli["detections"][i].value("mask", json::object()));
  }

  // Greedy decoding too (no forcing): same tokens as the CLI.
  const json greedy_cli = run_cli(
      "detect", {"--model", perception_model(), "--image", perception_image("shapes-90x170.jpg"),
                 "--query", "a square", "--max-new-tokens", "6"});
  const json greedy = parse_body(
      post_json(client, {{"image", {{"base64", b64_file(perception_image("shapes-90x170.jpg"))}}},
                         {"query", "a square"},
                         {"task", "detection"},
                         {"max_tokens", 6}}));
  EXPECT_EQ(greedy["tokens"], greedy_cli["tokens"]);
  EXPECT_EQ(greedy["text"], greedy_cli["text"]);
  EXPECT_EQ(greedy["output_tokens"], 6);
}

TEST_F(PerceptionServer, UploadGivesTheSameAnswerAsJson) {
  const json c = fixture_case("perception-tiny", "seg-small-rgba");
  const std::string forced = join_tokens(c);
  auto client = server_->client();
  const httplib::MultipartFormDataItems form = {
      {"image", read_file(perception_image(c["image"])), "shape.png", "image/png"},
      {"query", c["query"], "", ""},
      {"task", "segmentation", "", ""},
      {"min_image_size", "64", "", ""},
      {"max_image_size", "128", "", ""},
      {"forced_tokens", forced, "", ""}};
  const auto up = client.Post("/v1/predictions/upload", form);
  ASSERT_TRUE(up);
  ASSERT_EQ(up->status, 200) << up->body;
  const json a = json::parse(up->body);
  const json b = parse_body(post_json(client, case_request(c)));
  EXPECT_EQ(without_run_fields(a), without_run_fields(b));
  ASSERT_EQ(a["masks"].size(), 1u);
  EXPECT_EQ(a["image_width"], 40);
}

TEST_F(PerceptionServer, DefaultTaskIsSegmentation) {
  auto client = server_->client();
  const json j = parse_body(post_json(
      client, {{"image", {{"base64", b64_file(perception_image("shapes-40x30-rgba.png"))}}},
               {"query", "a shape"},
               {"max_tokens", 3},
               {"min_image_size", 64},
               {"max_image_size", 128}}));
  EXPECT_EQ(j["task"], "segmentation");
  EXPECT_EQ(j["output_tokens"], 3);
}

}  // namespace
}  // namespace falcon::test
