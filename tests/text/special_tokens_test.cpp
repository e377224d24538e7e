#include "text/special_tokens.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "core/error.h"
#include "core/json_file.h"
#include "test_support.h"

namespace falcon {
namespace {

namespace fs = std::filesystem;

std::string model_dir(const std::string& name) {
  return test::fixtures_dir() + "/" + name + "/model";
}

TEST(SpecialTokensTest, ResolvesTheFixtureModelsTokens) {
  for (const std::string name : {"perception-tiny", "ocr-tiny"}) {
    const Tokenizer tok = Tokenizer::from_file(model_dir(name) + "/tokenizer.json");
    const SpecialTokens s = load_special_tokens(model_dir(name), tok);
    // The fixtures keep the published models' ids (fixtures/README.md) ...
    EXPECT_EQ(s.eos, 11);
    EXPECT_EQ(s.pad, 0);
    EXPECT_EQ(s.image, 227);
    EXPECT_EQ(s.image_row_sep, 228);
    EXPECT_EQ(s.start_of_image, 229);
    EXPECT_EQ(s.end_of_image, 230);
    EXPECT_EQ(s.coord, 240);
    EXPECT_EQ(s.size, 241);
    EXPECT_EQ(s.image_cls, 244);
    EXPECT_EQ(s.reg, (std::array<int32_t, 4>{245, 246, 247, 248}));
    EXPECT_EQ(s.seg, 262);
    // ... except the query tokens, which the tiny vocabulary places elsewhere.
    EXPECT_EQ(s.end_of_query, tok.token_to_id("<|end_of_query|>"));
    EXPECT_EQ(s.end_of_query, 254);
    EXPECT_EQ(s.start_of_query, 250);
    EXPECT_EQ(s.bos, std::nullopt);
    EXPECT_EQ(s.token_strings.at("image_token"), "<|image|>");
    EXPECT_EQ(s.token_strings.at("eos_token"), "<|end_of_text|>");

    // They agree with the ids config.json carries.
    const nlohmann::json config = read_json_file(model_dir(name) + "/config.json");
    EXPECT_EQ(s.eos, config["eos_id"]);
    EXPECT_EQ(s.image, config["img_id"]);
    EXPECT_EQ(s.seg, config["seg_token_id"]);
    EXPECT_EQ(s.reg[3], config["image_reg_4_token_id"]);
  }
}

class TempModelDir : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("falcon_special_tokens_" + std::to_string(std::random_device{}()));
    fs::create_directories(dir_);
    fs::copy_file(model_dir("perception-tiny") + "/tokenizer.json", dir_ / "tokenizer.json");
    tok_ = std::make_unique<Tokenizer>(Tokenizer::from_file((dir_ / "tokenizer.json").string()));
  }
  void TearDown() override { fs::remove_all(dir_); }
  void write(const std::string& name, const nlohmann::json& j) {
    std::ofstream(dir_ / name) << j.dump();
  }

  fs::path dir_;
  std::unique_ptr<Tokenizer> tok_;
};

TEST_F(TempModelDir, NamesInTheFilesWinOverConventions) {
  // A model that calls its image token something else.
  write("tokenizer_config.json", {{"model_specific_special_tokens", {{"image_token", "<|DET|>"}}}});
  write("special_tokens_map.json", {{"eos_token", {{"content", "<|pad|>"}, {"special", true}}}});
  const SpecialTokens s = load_special_tokens(dir_.string(), *tok_);
  EXPECT_EQ(s.image, 253);
  EXPECT_EQ(s.eos, 0);
}

TEST_F(TempModelDir, FallsBackToConfigIds) {
  write("config.json", {{"img_id", 5}, {"eos_id", 7}});
  const SpecialTokens s = load_special_tokens(dir_.string(), *tok_);
  EXPECT_EQ(s.image, 5);
  EXPECT_EQ(s.eos, 7);
  EXPECT_EQ(s.image_cls, 244);  // neither named nor in config.json: the conventional string
}

TEST_F(TempModelDir, UnknownTokenStringIsFileError) {
  write("tokenizer_config.json",
        {{"model_specific_special_tokens", {{"seg_token", "<|no_such_token|>"}}}});
  try {
    load_special_tokens(dir_.string(), *tok_);
    FAIL();
  } catch (const FileError& e) {
    EXPECT_NE(std::string(e.what()).find("seg_token"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("tokenizer_config.json"), std::string::npos) << e.what();
  }
}

TEST_F(TempModelDir, MalformedFilesAreFileErrors) {
  std::ofstream(dir_ / "tokenizer_config.json") << "{not json";
  EXPECT_THROW(load_special_tokens(dir_.string(), *tok_), FileError);
  write("tokenizer_config.json", {{"model_specific_special_tokens", {1, 2}}});
  EXPECT_THROW(load_special_tokens(dir_.string(), *tok_), FileError);
  write("tokenizer_config.json", nlohmann::json::object());
  write("config.json", {{"img_id", 1 << 30}});
  EXPECT_THROW(load_special_tokens(dir_.string(), *tok_), FileError);
}

}  // namespace
}  // namespace falcon
