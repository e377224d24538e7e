// Every kind of bad request gets a 4xx with a JSON error saying what is wrong, and the
// server keeps serving afterwards.
#include "server_harness.h"

namespace falcon::test {
namespace {

class BadInput : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new ServerProcess({"--model", perception_model(), "--max-body-mb", "1"});
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static ServerProcess* server_;

  // Posts `body` as it is (it need not be JSON) and checks the status and error shape.
  json expect_error(const std::string& body, int status, const std::string& code = "",
                    const std::string& content_type = "application/json") {
    auto c = server_->client();
    const auto r = c.Post("/v1/predictions", body, content_type.c_str());
    EXPECT_TRUE(r) << "no answer";
    if (!r) return json();
    EXPECT_EQ(r->status, status) << r->body;
    EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
    const json j = json::parse(r->body, nullptr, false);
    EXPECT_TRUE(j.is_object()) << r->body;
    if (!j.is_object()) return j;
    EXPECT_TRUE(j["error"]["message"].is_string()) << r->body;
    EXPECT_FALSE(j["error"]["message"].get<std::string>().empty());
    EXPECT_EQ(j["detail"], j["error"]["message"]);  // what FastAPI clients read
    if (!code.empty()) {
      EXPECT_EQ(j["error"]["code"], code) << r->body;
    }
    return j;
  }

  static json good(json extra = json::object()) {
    json b = {{"image", {{"base64", b64_file(perception_image("shapes-40x30-rgba.png"))}}},
              {"query", "a shape"},
              {"task", "detection"},
              {"max_tokens", 2}};
    b.update(extra);
    return b;
  }
};
ServerProcess* BadInput::server_ = nullptr;

TEST_F(BadInput, MalformedJson) {
  expect_error("{\"image\": ", 400, "invalid_json");
  expect_error("", 400, "invalid_json");
  expect_error("not json at all", 400, "invalid_json");
}

TEST_F(BadInput, WrongShapes) {
  expect_error("[1, 2]", 422, "invalid_field");
  expect_error(R"({"query": "x"})", 422, "missing_field");
  expect_error(good({{"image", "aGVsbG8="}}).dump(), 422, "invalid_field");
  expect_error(good({{"image", {{"base64", 5}}}}).dump(), 422, "invalid_field");
  expect_error(good({{"max_tokens", "ten"}}).dump(), 422, "invalid_field");
  expect_error(good({{"max_tokens", -1}}).dump(), 422, "invalid_field");
  expect_error(good({{"min_image_size", 1.5}}).dump(), 422, "invalid_field");
  expect_error(good({{"stream", "yes"}}).dump(), 422, "invalid_field");
  json no_query = good();
  no_query.erase("query");
  expect_error(no_query.dump(), 422, "missing_field");
}

TEST_F(BadInput, MissingOrUndecodableImage) {
  expect_error(good({{"image", json::object()}}).dump(), 400, "missing_image");
  expect_error(good({{"image", {{"base64", ""}}}}).dump(), 400, "missing_image");
  expect_error(good({{"image", {{"base64", "!!not base64!!"}}}}).dump(), 400, "invalid_base64");
  expect_error(good({{"image", {{"base64", "aGVsbG8gd29ybGQ="}}}}).dump(), 400,
               "invalid_image");  // "hello world"
  expect_error(good({{"image", {{"base64", "R0lGODlhAQABAAAAACw="}}}}).dump(), 400,
               "unsupported_image");  // GIF
  // A PNG cut short: the header is fine, the decoder (on the engine thread) fails.
  const std::string png = read_file(perception_image("shapes-200x120.png"));
  const json j = expect_error(
      good({{"image", {{"base64", server::encode_base64(png.substr(0, 200))}}}}).dump(), 400);
  EXPECT_EQ(j["error"]["code"], "invalid_image") << j.dump();
}

TEST_F(BadInput, UnknownOrUnsupportedTask) {
  expect_error(good({{"task", "tracking"}}).dump(), 422, "invalid_field");
  const json ocr = expect_error(good({{"task", "ocr_plain"}}).dump(), 400, "unsupported_task");
  EXPECT_NE(ocr["error"]["message"].get<std::string>().find("segmentation, detection"),
            std::string::npos);
  expect_error(good({{"task", "ocr_layout"}}).dump(), 400, "unsupported_task");
}

TEST_F(BadInput, BadUtf8InTheQuery) {
  std::string body = good({{"query", "QUERY"}}).dump();
  body.replace(body.find("QUERY"), 5, "a \xff\xfe b");
  expect_error(body, 400, "invalid_utf8");
  // A lone surrogate escape is not a character either.
  std::string escaped = good({{"query", "QUERY"}}).dump();
  escaped.replace(escaped.find("QUERY"), 5, "\\udc00");
  expect_error(escaped, 400, "invalid_utf8");
  // The same through the multipart form.
  auto c = server_->client();
  const auto r = c.Post(
      "/v1/predictions/upload",
      httplib::MultipartFormDataItems{
          {"image", read_file(perception_image("shapes-40x30-rgba.png")), "a.png", "image/png"},
          {"query", "bad \xc3", "", ""}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(parse_body(r)["error"]["code"], "invalid_utf8");
}

TEST_F(BadInput, EmptyQueryAndBadSizes) {
  expect_error(good({{"query", ""}}).dump(), 400, "invalid_query");
  // The engine refuses these once the request reaches it.
  expect_error(good({{"min_image_size", 512}, {"max_image_size", 256}}).dump(), 400);
  expect_error(good({{"max_image_size", 9000}}).dump(), 400);
}

TEST_F(BadInput, OversizedBody) {
  const std::string big = good({{"query", std::string(2 << 20, 'a')}}).dump();
  const json j = expect_error(big, 413, "payload_too_large");
  EXPECT_NE(j["error"]["message"].get<std::string>().find("--max-body-mb"), std::string::npos);
}

TEST_F(BadInput, UploadWithoutImageOrNotMultipart) {
  auto c = server_->client();
  const auto no_image =
      c.Post("/v1/predictions/upload", httplib::MultipartFormDataItems{{"query", "x", "", ""}});
  ASSERT_TRUE(no_image);
  EXPECT_EQ(no_image->status, 422);
  EXPECT_EQ(parse_body(no_image)["error"]["code"], "missing_field");
  const auto json_body = c.Post("/v1/predictions/upload", good().dump(), "application/json");
  ASSERT_TRUE(json_body);
  EXPECT_EQ(json_body->status, 422);
}

TEST_F(BadInput, DisabledFeatures) {
  expect_error(good({{"image", {{"url", "http://127.0.0.1:9/x.png"}}}}).dump(), 400,
               "url_disabled");
  expect_error(good({{"forced_tokens", {"<|coord|>"}}}).dump(), 400, "forced_tokens_disabled");
}

TEST_F(BadInput, ServerStillServesAfterwards) {
  // Run last in the suite's order of declaration; also fine on its own.
  auto c = server_->client();
  for (int i = 0; i < 3; ++i) expect_error("{", 400, "invalid_json");
  const auto r = post_json(c, good());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body)["output_tokens"], 2);
  const json s = parse_body(c.Get("/v1/status"));
  EXPECT_EQ(s["workers"][0]["running"], 0);
  EXPECT_EQ(s["workers"][0]["waiting"], 0);
}

// A model without the segmentation head answers segmentation requests with the
// reference's 400.
TEST(DetectionOnlyModel, RefusesSegmentation) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("falcon_det_only_" + std::to_string(getpid()));
  fs::create_directories(dir);
  for (const auto& e : fs::directory_iterator(perception_model())) {
    if (e.path().filename() != "config.json")
      fs::create_symlink(e.path(), dir / e.path().filename());
  }
  json config = json::parse(read_file(perception_model() + "/config.json"));
  config["do_segmentation"] = false;
  std::ofstream(dir / "config.json") << config.dump(2);
  {
    ServerProcess server({"--model", dir.string()});
    auto c = server.client();
    const json h = parse_body(c.Get("/v1/health"));
    ASSERT_EQ(h["supported_tasks"], json({"detection"})) << h.dump();
    EXPECT_EQ(parse_body(c.Get("/v1/models"))["data"][0]["id"], "falcon-perception-300m");
    const json body = {{"image", {{"base64", b64_file(perception_image("shapes-40x30-rgba.png"))}}},
                       {"query", "a shape"},
                       {"task", "segmentation"}};
    const auto r = post_json(c, body);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400);
    EXPECT_EQ(parse_body(r)["detail"],
              "Segmentation is not supported by the loaded model. Use task='detection' instead.");
    json det = body;
    det["task"] = "detection";
    det["max_tokens"] = 2;
    const auto ok = post_json(c, det);
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->status, 200) << ok->body;
    // No task given: this model's only task.
    json none = body;
    none.erase("task");
    none["max_tokens"] = 2;
    EXPECT_EQ(parse_body(post_json(c, none))["task"], "detection");
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace falcon::test
