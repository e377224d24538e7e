// The OCR model behind the API: plain OCR answers as the CLI does, perception tasks are
// refused, and text streams as server-sent events.
#include "server_harness.h"

namespace falcon::test {
namespace {

class OcrServer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new ServerProcess({"--model", ocr_model()}); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static ServerProcess* server_;
};
ServerProcess* OcrServer::server_ = nullptr;

json ocr_request(bool stream = false) {
  json r = {{"image", {{"base64", b64_file(ocr_image("text-240x64.png"))}}},
            {"task", "ocr_plain"},
            {"min_image_size", 64},
            {"max_image_size", 256},
            {"max_tokens", 16}};
  if (stream) r["stream"] = true;
  return r;
}

struct Event {
  std::string name;
  json data;
};

// Splits a text/event-stream body into its events.
std::vector<Event> parse_events(const std::string& body) {
  std::vector<Event> out;
  size_t pos = 0;
  while (pos < body.size()) {
    const size_t end = body.find("\n\n", pos);
    if (end == std::string::npos) break;
    const std::string block = body.substr(pos, end - pos);
    pos = end + 2;
    Event e;
    std::stringstream ss(block);
    std::string line;
    while (std::getline(ss, line)) {
      if (line.rfind("event: ", 0) == 0) e.name = line.substr(7);
      if (line.rfind("data: ", 0) == 0) e.data = json::parse(line.substr(6));
    }
    out.push_back(e);
  }
  return out;
}

TEST_F(OcrServer, HealthAndModels) {
  auto c = server_->client();
  const json h = parse_body(c.Get("/v1/health"));
  EXPECT_EQ(h["supported_tasks"], json({"ocr_plain"}));
  EXPECT_EQ(h["model_id"], "tiiuae/Falcon-OCR");
  EXPECT_EQ(parse_body(c.Get("/v1/models"))["data"][0]["id"], "falcon-ocr");
}

TEST_F(OcrServer, PlainOcrAnswersAsTheCli) {
  const json cli = run_cli(
      "ocr", {"--model", ocr_model(), "--image", ocr_image("text-240x64.png"), "--min-image-size",
              "64", "--max-image-size", "256", "--max-new-tokens", "16"});
  ASSERT_TRUE(cli.is_object());
  auto c = server_->client();
  const auto r = post_json(c, ocr_request());
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json j = json::parse(r->body);
  EXPECT_EQ(j["model"], "falcon-ocr");
  EXPECT_EQ(j["task"], "ocr_plain");
  EXPECT_EQ(j["text"], cli["text"]);
  EXPECT_EQ(j["tokens"], cli["tokens"]);
  EXPECT_EQ(j["input_tokens"], 81);  // the fixture's prompt length
  EXPECT_EQ(j["output_tokens"], 16);
  EXPECT_EQ(j["masks"], json::array());
  EXPECT_EQ(j["image_width"], 240);
  EXPECT_EQ(j["image_height"], 64);
  // The fixture's greedy tokens (the reference's decode).
  const json want =
      json::parse(read_file(fixtures_dir() + "/ocr-tiny/cases/ocr-text-png/expected.json"));
  EXPECT_EQ(j["tokens"], want["tokens"]);
}

TEST_F(OcrServer, QueryIsOptionalAndPerceptionTasksAreRefused) {
  auto c = server_->client();
  json no_task = ocr_request();
  no_task.erase("task");  // this model's only task
  EXPECT_EQ(parse_body(post_json(c, no_task))["task"], "ocr_plain");
  for (const char* task : {"segmentation", "detection"}) {
    json r = ocr_request();
    r["task"] = task;
    r["query"] = "a word";
    const auto res = post_json(c, r);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 400) << task;
    EXPECT_EQ(parse_body(res)["error"]["code"], "unsupported_task");
  }
}

TEST_F(OcrServer, StreamsTextAsServerSentEvents) {
  auto c = server_->client();
  const json plain = parse_body(post_json(c, ocr_request()));
  const auto r = post_json(c, ocr_request(/*stream=*/true));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/event-stream");
  const std::vector<Event> events = parse_events(r->body);
  ASSERT_GE(events.size(), 2u) << r->body;
  std::string streamed;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    EXPECT_EQ(events[i].name, "text");
    streamed += events[i].data["text"].get<std::string>();
  }
  EXPECT_FALSE(streamed.empty());
  ASSERT_EQ(events.back().name, "result");
  EXPECT_EQ(without_run_fields(events.back().data), without_run_fields(plain));
  // The pieces are the raw decoded tokens; the answer's text is the same output, cleaned.
  EXPECT_NE(streamed.find("val"), std::string::npos) << streamed;
}

TEST_F(OcrServer, StreamedErrorsBeforeDecodingKeepTheirStatus) {
  auto c = server_->client();
  json bad = ocr_request(true);
  const std::string png = read_file(ocr_image("text-240x64.png"));
  bad["image"]["base64"] = server::encode_base64(png.substr(0, 100));  // cut short
  const auto r = post_json(c, bad);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
}

}  // namespace
}  // namespace falcon::test
