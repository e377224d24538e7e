// The tokenizer against the reference library's outputs: every case of the six fixture
// tokenizers, and the prompts and decoded outputs of the model fixtures.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/json_file.h"
#include "core/safetensors.h"
#include "test_support.h"
#include "text/special_tokens.h"
#include "text/stream_decoder.h"
#include "text/tokenizer.h"

namespace falcon {
namespace {

std::string tokenizer_dir(const std::string& name) {
  return test::fixtures_dir() + "/tokenizers/" + name;
}

// Test names cannot contain '-'.
std::string dash_free_name(const ::testing::TestParamInfo<std::string>& p) {
  std::string name = p.param;
  for (char& ch : name) {
    if (ch == '-') ch = '_';
  }
  return name;
}

class FixtureTokenizerTest : public ::testing::TestWithParam<std::string> {};

TEST_P(FixtureTokenizerTest, EncodesAndDecodesEveryCase) {
  const std::string dir = tokenizer_dir(GetParam());
  const Tokenizer tok = Tokenizer::from_file(dir + "/tokenizer.json");
  const nlohmann::json cases = read_json_file(dir + "/cases.json");
  ASSERT_GE(cases.size(), 20u);
  for (const auto& c : cases) {
    const std::string text = c["text"];
    const std::vector<int32_t> want = c["ids"];
    EXPECT_EQ(tok.encode(text, true), want) << "text: " << text;
    EXPECT_EQ(tok.decode(want), c["decoded"].get<std::string>()) << "text: " << text;
  }
}

TEST_P(FixtureTokenizerTest, StreamingDecodeConcatenatesToTheFullDecode) {
  const std::string dir = tokenizer_dir(GetParam());
  const Tokenizer tok = Tokenizer::from_file(dir + "/tokenizer.json");
  const nlohmann::json cases = read_json_file(dir + "/cases.json");
  for (const auto& c : cases) {
    const std::vector<int32_t> ids = c["ids"];
    TokenStreamDecoder stream(tok);
    std::string streamed;
    for (const int32_t id : ids) {
      if (const auto piece = stream.step(id)) {
        EXPECT_FALSE(piece->ends_with("\xEF\xBF\xBD")) << "incomplete character emitted";
        streamed += *piece;
      }
    }
    streamed += stream.finish();
    EXPECT_EQ(streamed, c["decoded"].get<std::string>()) << "text: " << c["text"];
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, FixtureTokenizerTest,
                         ::testing::Values("bytelevel-gpt2", "bytelevel-falcon", "split-gpt2-nfc",
                                           "split-llama3", "split-llama3-nfkc",
                                           "metaspace-bytefallback"),
                         dash_free_name);

// The model fixtures: input_ids are the prompt with <|image|> replaced by the image block, each
// text chunk encoded on its own (as the reference's data.py does).
class ModelPromptTest : public ::testing::TestWithParam<std::string> {};

std::vector<int64_t> read_input_ids(const std::string& path) {
  const SafetensorsFile f = SafetensorsFile::open(path);
  const Tensor t = f.view("input_ids");
  EXPECT_EQ(t.dtype(), DType::I64);
  return std::vector<int64_t>(t.data<int64_t>(), t.data<int64_t>() + t.numel());
}

TEST_P(ModelPromptTest, PromptsReproduceInputIds) {
  const std::string model = test::fixtures_dir() + "/" + GetParam();
  const Tokenizer tok = Tokenizer::from_file(model + "/model/tokenizer.json");
  const SpecialTokens special = load_special_tokens(model + "/model", tok);
  int checked = 0;
  for (const auto& entry : std::filesystem::directory_iterator(model + "/cases")) {
    const nlohmann::json c = read_json_file(entry.path().string() + "/case.json");
    const std::vector<int64_t> input_ids =
        read_input_ids(entry.path().string() + "/expected.safetensors");
    const int64_t patches = std::count(input_ids.begin(), input_ids.end(), special.image);
    ASSERT_GT(patches, 0);

    const std::string prompt = c["prompt"];
    const std::string placeholder = tok.id_to_token(special.image);
    const size_t at = prompt.find(placeholder);
    ASSERT_NE(at, std::string::npos);
    std::vector<int64_t> want;
    for (const int32_t id : tok.encode(prompt.substr(0, at), true)) want.push_back(id);
    want.push_back(special.image_cls);
    for (const int32_t r : special.reg) want.push_back(r);
    want.insert(want.end(), size_t(patches), special.image);
    want.push_back(special.end_of_image);
    for (const int32_t id : tok.encode(prompt.substr(at + placeholder.size()), true))
      want.push_back(id);
    EXPECT_EQ(want, input_ids) << entry.path();
    ++checked;
  }
  EXPECT_GE(checked, 2);
}

TEST_P(ModelPromptTest, DecodesGeneratedTokensLikeTheReference) {
  const std::string model = test::fixtures_dir() + "/" + GetParam();
  const Tokenizer tok = Tokenizer::from_file(model + "/model/tokenizer.json");
  for (const auto& entry : std::filesystem::directory_iterator(model + "/cases")) {
    const nlohmann::json e = read_json_file(entry.path().string() + "/expected.json");
    const std::vector<int32_t> tokens = e["tokens"];
    EXPECT_EQ(tok.decode(tokens), e["decoded_text"].get<std::string>()) << entry.path();
  }
}

INSTANTIATE_TEST_SUITE_P(Models, ModelPromptTest, ::testing::Values("perception-tiny", "ocr-tiny"),
                         dash_free_name);

}  // namespace
}  // namespace falcon
