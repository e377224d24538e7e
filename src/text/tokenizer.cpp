#include "text/tokenizer.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/json_file.h"
#include "text/added_vocabulary.h"
#include "text/bpe_model.h"
#include "text/decoder.h"
#include "text/json_field.h"
#include "text/normalizer.h"
#include "text/post_processor.h"
#include "text/pre_tokenizer.h"
#include "text/utf8.h"

namespace falcon {
namespace {

// Reads "added_tokens". A token already in the model vocabulary takes the model's id (as in the
// reference); any other keeps the id the file gives it.
std::vector<text::AddedToken> parse_added_tokens(const text::JsonField& list,
                                                 const text::BpeModel& model) {
  std::vector<text::AddedToken> tokens;
  for (size_t i = 0; i < list.array_size(); ++i) {
    const text::JsonField entry = list.at(i);
    text::AddedToken t;
    t.content = entry.at("content").as_string();
    t.single_word = entry.bool_or("single_word", false);
    t.lstrip = entry.bool_or("lstrip", false);
    t.rstrip = entry.bool_or("rstrip", false);
    t.normalized = entry.bool_or("normalized", true);
    t.special = entry.bool_or("special", false);
    if (const auto id = model.token_to_id(t.content)) {
      t.id = *id;
    } else {
      t.id = entry.at("id").as_id();
      if (const auto other = model.id_to_token(t.id)) {
        entry.at("id").fail("id " + std::to_string(t.id) + " already belongs to model token '" +
                            std::string(*other) + "'");
      }
    }
    tokens.push_back(std::move(t));
  }
  return tokens;
}

}  // namespace

Tokenizer::Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_file(const std::string& path) {
  return from_json(read_text_file(path), path);
}

Tokenizer Tokenizer::from_json(std::string_view json_text, const std::string& label) {
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::exception& e) {
    throw FileError(label + ": invalid JSON: " + e.what());
  }
  const text::JsonField root(json, label);
  if (!json.is_object()) root.fail("expected a JSON object");

  Tokenizer tok;
  if (const auto n = root.find("normalizer")) tok.normalizer_ = text::parse_normalizer(*n);
  if (const auto p = root.find("pre_tokenizer")) tok.pre_tokenizer_ = text::parse_pre_tokenizer(*p);
  tok.model_ = text::BpeModel::from_json(root.at("model"));
  if (const auto p = root.find("post_processor"))
    tok.post_processor_ = text::parse_post_processor(*p);
  if (const auto d = root.find("decoder")) tok.decoder_ = text::parse_decoder(*d);
  std::vector<text::AddedToken> added;
  if (const auto a = root.find("added_tokens")) added = parse_added_tokens(*a, *tok.model_);
  tok.added_ = std::make_unique<text::AddedVocabulary>(std::move(added), tok.normalizer_.get());
  return tok;
}

void Tokenizer::encode_text_piece(const std::string& piece, bool at_text_start,
                                  std::vector<int32_t>& ids) const {
  std::vector<text::PreToken> pieces{{piece, at_text_start}};
  if (pre_tokenizer_) pre_tokenizer_->pre_tokenize(pieces);
  for (const text::PreToken& p : pieces) model_->tokenize(p.text, ids);
}

std::vector<int32_t> Tokenizer::encode(std::string_view input, bool add_special_tokens) const {
  text::require_valid_utf8(input, "encode");
  std::vector<int32_t> ids;
  ids.reserve(input.size() / 3 + 8);
  std::vector<text::TextSplit> parts;
  for (text::TextSplit& split : added_->split_raw(input)) {
    if (split.token_id >= 0) {
      ids.push_back(split.token_id);
      continue;
    }
    if (normalizer_) normalizer_->normalize(split.text);
    parts.clear();
    added_->split_normalized(std::move(split.text), split.at_text_start, parts);
    for (const text::TextSplit& part : parts) {
      if (part.token_id >= 0) {
        ids.push_back(part.token_id);
      } else {
        encode_text_piece(part.text, part.at_text_start, ids);
      }
    }
  }
  if (post_processor_) post_processor_->process(ids, add_special_tokens);
  return ids;
}

std::vector<std::string> Tokenizer::tokens_for_decode(std::span<const int32_t> ids,
                                                      bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (const int32_t id : ids) {
    if (const text::AddedToken* added = added_->find_by_id(id)) {
      if (!(skip_special_tokens && added->special)) tokens.push_back(added->content);
      continue;
    }
    const auto token = model_->id_to_token(id);
    if (!token)
      throw InvalidArgument("decode: token id " + std::to_string(id) + " is not in the vocabulary");
    tokens.emplace_back(*token);
  }
  return tokens;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens = tokens_for_decode(ids, skip_special_tokens);
  std::string out;
  if (decoder_) {
    decoder_->decode_chain(tokens);
    for (const std::string& t : tokens) out.append(t);
  } else {
    // Without a decoder the reference joins the tokens with spaces.
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i > 0) out.push_back(' ');
      out.append(tokens[i]);
    }
  }
  return out;
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  if (const auto id = added_->find_by_content(token)) return id;
  return model_->token_to_id(token);
}

std::string Tokenizer::id_to_token(int32_t id) const {
  if (const text::AddedToken* added = added_->find_by_id(id)) return added->content;
  if (const auto token = model_->id_to_token(id)) return std::string(*token);
  throw InvalidArgument("id_to_token: token id " + std::to_string(id) +
                        " is not in the vocabulary");
}

bool Tokenizer::is_special(int32_t id) const {
  const text::AddedToken* added = added_->find_by_id(id);
  return added && added->special;
}

int32_t Tokenizer::vocab_size() const {
  int32_t max_id = model_->max_id();
  for (const text::AddedToken& t : added_->tokens()) max_id = std::max(max_id, t.id);
  return max_id + 1;
}

}  // namespace falcon
