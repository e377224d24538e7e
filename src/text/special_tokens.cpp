#include "text/special_tokens.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/json_file.h"

namespace falcon {
namespace {

nlohmann::json read_optional_json(const std::string& path) {
  if (!std::filesystem::exists(path)) return nlohmann::json::object();
  nlohmann::json j = read_json_file(path);
  if (!j.is_object()) throw FileError(path + ": expected a JSON object");
  return j;
}

// A token given as a string or as an AddedToken object {"content": ...}; nullopt otherwise.
std::optional<std::string> token_string(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string())
    return v["content"].get<std::string>();
  return std::nullopt;
}

class Resolver {
 public:
  Resolver(const std::string& dir, const Tokenizer& tokenizer) : dir_(dir), tokenizer_(tokenizer) {
    const nlohmann::json map = read_optional_json(dir + "/special_tokens_map.json");
    const nlohmann::json config = read_optional_json(dir + "/tokenizer_config.json");
    model_config_ = read_optional_json(dir + "/config.json");
    for (const auto& [name, value] : map.items()) add(name, value, "special_tokens_map.json");
    // The reference prefers tokenizer_config.json's eos/pad/bos over special_tokens_map.json.
    for (const char* name : {"eos_token", "pad_token", "bos_token"}) {
      if (config.contains(name)) add(name, config[name], "tokenizer_config.json");
    }
    if (config.contains("model_specific_special_tokens")) {
      const auto& specific = config["model_specific_special_tokens"];
      if (!specific.is_object()) {
        throw FileError(
            dir +
            "/tokenizer_config.json: field 'model_specific_special_tokens': expected an object");
      }
      for (const auto& [name, value] : specific.items()) add(name, value, "tokenizer_config.json");
    }
  }

  // The id of token `name` ("image_token"): from the token files, else config.json's
  // `config_key`, else `conventional` if the vocabulary has it.
  std::optional<int32_t> find(const std::string& name, const char* config_key,
                              const char* conventional) const {
    if (const auto it = strings_.find(name); it != strings_.end()) {
      const auto id = tokenizer_.token_to_id(it->second);
      if (!id) {
        throw FileError(dir_ + "/" + sources_.at(name) + ": special token '" + name + "' = '" +
                        it->second + "' is not in the tokenizer vocabulary");
      }
      return id;
    }
    if (config_key && model_config_.contains(config_key)) {
      const auto& v = model_config_[config_key];
      if (!v.is_number_integer() || v.get<int64_t>() < 0 ||
          v.get<int64_t>() >= tokenizer_.vocab_size()) {
        throw FileError(dir_ + "/config.json: field '" + config_key +
                        "': expected a token id below " + std::to_string(tokenizer_.vocab_size()));
      }
      return static_cast<int32_t>(v.get<int64_t>());
    }
    if (conventional) return tokenizer_.token_to_id(conventional);
    return std::nullopt;
  }

  int32_t require(const std::string& name, const char* config_key, const char* conventional) const {
    if (const auto id = find(name, config_key, conventional)) return *id;
    throw FileError(
        dir_ + ": special token '" + name +
        "' is named neither in tokenizer_config.json, special_tokens_map.json nor config.json");
  }

  const std::map<std::string, std::string>& strings() const { return strings_; }

 private:
  void add(const std::string& name, const nlohmann::json& value, const char* source) {
    if (const auto s = token_string(value)) {
      strings_[name] = *s;
      sources_[name] = source;
    }
  }

  std::string dir_;
  const Tokenizer& tokenizer_;
  nlohmann::json model_config_;
  std::map<std::string, std::string> strings_;
  std::map<std::string, std::string> sources_;
};

}  // namespace

SpecialTokens load_special_tokens(const std::string& model_dir, const Tokenizer& tokenizer) {
  const Resolver r(model_dir, tokenizer);
  SpecialTokens t;
  t.eos = r.require("eos_token", "eos_id", "<|end_of_text|>");
  t.pad = r.require("pad_token", nullptr, "<|pad|>");
  t.image = r.require("image_token", "img_id", "<|image|>");
  t.image_cls = r.require("image_cls_token", "image_cls_token_id", "<|image_cls|>");
  for (int i = 0; i < 4; ++i) {
    const std::string n = std::to_string(i + 1);
    const std::string config_key = "image_reg_" + n + "_token_id";
    const std::string conventional = "<|image_reg_" + n + "|>";
    t.reg[size_t(i)] =
        r.require("image_reg_" + n + "_token", config_key.c_str(), conventional.c_str());
  }
  t.end_of_image = r.require("end_of_image_token", "img_end_id", "<|end_of_image|>");
  t.coord = r.require("coord_token", "coord_token_id", "<|coord|>");
  t.size = r.require("size_token", "size_token_id", "<|size|>");
  t.seg = r.require("seg_token", "seg_token_id", "<|seg|>");
  t.end_of_query = r.find("end_of_query_token", nullptr, "<|end_of_query|>");
  t.start_of_query = r.find("start_of_query_token", nullptr, "<|start_of_query|>");
  t.start_of_image = r.find("start_of_image_token", "img_start_id", "<|start_of_image|>");
  t.image_row_sep = r.find("image_row_sep_token", "img_row_sep_id", "<|image_row_sep|>");
  t.bos = r.find("bos_token", nullptr, nullptr);
  t.token_strings = r.strings();
  return t;
}

}  // namespace falcon
