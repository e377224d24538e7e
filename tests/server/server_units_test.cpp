// The server's small pieces on their own: base64, UTF-8, API keys, request parsing.
#include <gtest/gtest.h>

#include "server/api_error.h"
#include "server/api_key.h"
#include "server/base64.h"
#include "server/prediction_input.h"
#include "server/prediction_response.h"
#include "server/utf8.h"
#include "server_harness.h"

namespace falcon::server {
namespace {

TEST(Base64, RoundTripsEveryLength) {
  std::string bytes;
  for (int n = 0; n < 70; ++n) {
    const std::string enc = encode_base64(bytes);
    EXPECT_EQ(enc.size(), (bytes.size() + 2) / 3 * 4);
    const auto dec = decode_base64(enc);
    ASSERT_TRUE(dec) << enc;
    EXPECT_EQ(*dec, bytes);
    bytes.push_back(char(n * 37 + 11));
  }
}

TEST(Base64, KnownValuesAndLeniency) {
  EXPECT_EQ(encode_base64("Man"), "TWFu");
  EXPECT_EQ(encode_base64("Ma"), "TWE=");
  EXPECT_EQ(encode_base64("M"), "TQ==");
  EXPECT_EQ(*decode_base64("TWFu\nTWE=\r\n"), "ManMa");  // wrapped lines
  EXPECT_EQ(*decode_base64("TWE"), "Ma");                // padding left out
  EXPECT_EQ(*decode_base64("data:image/png;base64,TWFu"), "Man");
}

TEST(Base64, RefusesWhatIsNotBase64) {
  EXPECT_FALSE(decode_base64("TWF!"));
  EXPECT_FALSE(decode_base64("T"));      // 6 bits cannot end a byte
  EXPECT_FALSE(decode_base64("TQ=a"));   // data after padding
  EXPECT_FALSE(decode_base64("TQ==="));  // too much padding
  EXPECT_FALSE(decode_base64("TWE=="));  // padding that does not complete a quantum
  EXPECT_FALSE(decode_base64("\xff\xfe"));
}

TEST(Utf8, Validation) {
  EXPECT_TRUE(is_valid_utf8("plain ascii"));
  EXPECT_TRUE(is_valid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  EXPECT_FALSE(is_valid_utf8("\xff"));
  EXPECT_FALSE(is_valid_utf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));      // surrogate U+D800
  EXPECT_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\xe2\x82"));          // cut short
}

TEST(Utf8, StreamHoldsBackSplitCharacters) {
  Utf8Stream s;
  EXPECT_EQ(s.push("a\xe2"), "a");  // the euro sign starts
  EXPECT_EQ(s.push("\x82"), "");
  EXPECT_EQ(s.push("\xac"
                   "b"),
            "\xe2\x82\xac"
            "b");
  EXPECT_EQ(s.push("\xff"
                   "c"),
            "\xef\xbf\xbd"
            "c");  // invalid byte -> U+FFFD
  EXPECT_EQ(s.push("\xf0\x9f"), "");
  EXPECT_EQ(s.flush(), "\xef\xbf\xbd");  // cut short at the end
}

TEST(ApiKey, BearerMatching) {
  EXPECT_TRUE(bearer_token_matches("Bearer s3cret", "s3cret"));
  EXPECT_TRUE(bearer_token_matches("bearer s3cret", "s3cret"));
  EXPECT_FALSE(bearer_token_matches("Bearer s3creT", "s3cret"));
  EXPECT_FALSE(bearer_token_matches("Bearer s3cret ", "s3cret"));
  EXPECT_FALSE(bearer_token_matches("Basic s3cret", "s3cret"));
  EXPECT_FALSE(bearer_token_matches("", "s3cret"));
}

TEST(ApiError, TypedEngineErrorsMapToStatuses) {
  auto status_of = [](auto e) { return to_api_error(std::make_exception_ptr(e)).status(); };
  EXPECT_EQ(status_of(InvalidArgument("x")), 400);
  EXPECT_EQ(status_of(FileError("x")), 400);
  EXPECT_EQ(status_of(Unsupported("x")), 400);
  EXPECT_EQ(status_of(OutOfMemory("x")), 503);
  EXPECT_EQ(status_of(InternalError("x")), 500);
  EXPECT_EQ(status_of(std::runtime_error("x")), 500);
  const ApiError e = to_api_error(std::make_exception_ptr(OutOfMemory("no room")));
  EXPECT_EQ(e.retry_after_s, 5);
  const nlohmann::json body = error_body(ApiError(404, "not_found", "nothing here"));
  EXPECT_EQ(body["error"]["message"], "nothing here");
  EXPECT_EQ(body["error"]["code"], "not_found");
  EXPECT_EQ(body["detail"], "nothing here");
}

ModelInfo perception_info() {
  ModelInfo m;
  m.variant = "perception";
  m.supported_tasks = {"segmentation", "detection"};
  return m;
}

int status_of_json(const std::string& body, const ModelInfo& m = perception_info(),
                   InputPolicy policy = {}) {
  try {
    parse_prediction_json(body, m, policy);
    return 200;
  } catch (const ApiError& e) {
    return e.status();
  }
}

TEST(PredictionInput, JsonFieldsBecomeTheEngineRequest) {
  const std::string png = test::read_file(test::perception_image("shapes-200x120.png"));
  const nlohmann::json body = {{"image", {{"base64", encode_base64(png)}}},
                               {"query", "dog"},
                               {"task", "detection"},
                               {"max_tokens", 12.0},
                               {"min_image_size", 64},
                               {"max_image_size", 128}};
  const PredictionInput in = parse_prediction_json(body.dump(), perception_info(), {});
  EXPECT_EQ(in.request.task, Task::Detection);
  EXPECT_EQ(in.request.query, "dog");
  EXPECT_EQ(in.request.image_bytes, png);
  EXPECT_EQ(in.request.sampling.max_new_tokens, 12);
  EXPECT_EQ(in.request.min_image_size, 64);
  EXPECT_EQ(in.request.max_image_size, 128);
  EXPECT_FALSE(in.stream);
  // No task: the model's first (segmentation), as the reference's default.
  const PredictionInput d = parse_prediction_json(
      nlohmann::json{{"image", {{"base64", encode_base64(png)}}}, {"query", "dog"}}.dump(),
      perception_info(), {});
  EXPECT_EQ(d.request.task, Task::Segmentation);
  EXPECT_EQ(d.request.sampling.max_new_tokens, 0);  // the engine's default, as the CLI
}

TEST(PredictionInput, StatusesOfBadBodies) {
  const std::string img =
      encode_base64(test::read_file(test::perception_image("shapes-40x30-rgba.png")));
  auto with = [&](nlohmann::json extra) {
    nlohmann::json b = {{"image", {{"base64", img}}}, {"query", "x"}};
    if (extra.is_object()) b.update(extra);
    return b.dump();
  };
  EXPECT_EQ(status_of_json(with({})), 200);
  EXPECT_EQ(status_of_json("{"), 400);
  EXPECT_EQ(status_of_json("[1]"), 422);
  EXPECT_EQ(status_of_json(R"({"query": "x"})"), 422);
  EXPECT_EQ(status_of_json(with({{"task", "tracking"}})), 422);
  EXPECT_EQ(status_of_json(with({{"task", "ocr_plain"}})), 400);
  EXPECT_EQ(status_of_json(with({{"task", "ocr_layout"}})), 400);
  EXPECT_EQ(status_of_json(with({{"max_tokens", "many"}})), 422);
  EXPECT_EQ(status_of_json(with({{"max_tokens", 0}})), 422);
  EXPECT_EQ(status_of_json(with({{"max_tokens", 1.5}})), 422);
  EXPECT_EQ(status_of_json(with({{"query", 7}})), 422);
  EXPECT_EQ(status_of_json(with({{"query", ""}})), 400);
  EXPECT_EQ(status_of_json(with({{"image", {{"base64", "@@@@"}}}})), 400);
  EXPECT_EQ(status_of_json(with({{"image", {{"base64", encode_base64("GIF89a......")}}}})), 400);
  EXPECT_EQ(status_of_json(with({{"image", {{"url", "http://example.com/a.png"}}}})),
            400);                                                            // URLs off
  EXPECT_EQ(status_of_json(with({{"forced_tokens", {"<|coord|>"}}})), 400);  // off too
  EXPECT_EQ(status_of_json("{\"image\": {\"base64\": \"" + img + "\"}, \"query\": \"\xff\"}"), 400);
  ModelInfo det = perception_info();
  det.supported_tasks = {"detection"};
  EXPECT_EQ(status_of_json(with({{"task", "segmentation"}}), det), 400);
  EXPECT_EQ(status_of_json(with({{"task", "detection"}}), det), 200);
}

TEST(PredictionInput, FormFields) {
  const std::string png = test::read_file(test::perception_image("shapes-40x30-rgba.png"));
  FormFields form = {{"image", {png, "a.png", "image/png"}},
                     {"query", {"a shape", "", ""}},
                     {"task", {"detection", "", ""}},
                     {"max_tokens", {"9", "", ""}}};
  const PredictionInput in = parse_prediction_form(form, perception_info(), {});
  EXPECT_EQ(in.request.task, Task::Detection);
  EXPECT_EQ(in.request.sampling.max_new_tokens, 9);
  EXPECT_EQ(in.request.image_bytes, png);
  form["max_tokens"].content = "9x";
  EXPECT_THROW(parse_prediction_form(form, perception_info(), {}), ApiError);
  form["max_tokens"].content = "9";
  form["query"].content = "bad \xc3";
  try {
    parse_prediction_form(form, perception_info(), {});
    ADD_FAILURE() << "bad UTF-8 accepted";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 400);
    EXPECT_EQ(e.code(), "invalid_utf8");
  }
}

TEST(PredictionResponse, ReferenceFieldsFromAResult) {
  Result r;
  r.text = "<|coord|><|size|>";
  r.tokens = {240, 241};
  r.image_width = 200;
  r.image_height = 120;
  r.input_tokens = 65;
  r.output_tokens = 2;
  r.timings = {1, 2, 3, 4, 5, 20};
  Detection d;
  d.bbox = {1, 2, 30, 40};
  r.detections.push_back(d);
  d.mask = Mask{120, 200, "PXn0", {}, 12};
  r.detections.push_back(d);
  ResponseMeta meta{
      "pred_0123456789ab", "falcon-perception", 1700000000, Task::Segmentation, "q", 25.0};
  const nlohmann::json j = prediction_response(r, {4, 10}, meta);
  EXPECT_EQ(j["id"], "pred_0123456789ab");
  EXPECT_EQ(j["masks"].size(), 2u);
  EXPECT_EQ(j["masks"][0]["label"], "object 1");
  EXPECT_EQ(j["masks"][0]["rle"], nlohmann::json::object());
  EXPECT_EQ(j["masks"][0]["height"], 120);
  EXPECT_EQ(j["masks"][1]["rle"]["counts"], "PXn0");
  EXPECT_EQ(j["masks"][1]["rle"]["size"], nlohmann::json({120, 200}));
  EXPECT_EQ(j["masks"][1]["bbox"], nlohmann::json({1.0, 2.0, 30.0, 40.0}));
  EXPECT_DOUBLE_EQ(j["inference_time_ms"].get<double>(),
                   2 + 3 + 4 + 5);  // preprocess+prefill+seg+decode
  EXPECT_DOUBLE_EQ(j["queue_ms"].get<double>(), 25.0 - 14);
  EXPECT_DOUBLE_EQ(j["avg_decode_batch_size"].get<double>(), 2.5);
  EXPECT_EQ(j["num_decode_steps"], 4);
  EXPECT_EQ(j["tokens"], nlohmann::json({240, 241}));
  EXPECT_EQ(j["layout_regions"], nlohmann::json::array());
  EXPECT_TRUE(j["combined_mask"].is_null());
}

TEST(PredictionResponse, IdsLookLikeTheReference) {
  const std::string a = new_prediction_id(), b = new_prediction_id();
  EXPECT_EQ(a.size(), 17u);
  EXPECT_EQ(a.rfind("pred_", 0), 0u);
  EXPECT_NE(a, b);
  // A token cut mid-character must not make serialisation throw.
  EXPECT_EQ(dump_json(nlohmann::json{{"t", "a\xe2\x82"}}), "{\"t\":\"a\xef\xbf\xbd\"}");
}

}  // namespace
}  // namespace falcon::server
