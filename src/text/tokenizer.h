// A Hugging Face tokenizer.json tokenizer (BPE model) that produces the same ids and text as the
// `tokenizers` library (0.22): added tokens cut out first, then normalizer, pre-tokenizer, BPE,
// post-processor; decoding through the configured decoder chain.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace falcon {

namespace text {
class AddedVocabulary;
class BpeModel;
class Decoder;
class Normalizer;
class PostProcessor;
class PreTokenizer;
}  // namespace text

class Tokenizer {
 public:
  // Loads tokenizer.json. FileError naming the file and field when it is missing or malformed,
  // Unsupported for components this engine does not implement.
  static Tokenizer from_file(const std::string& path);
  // Same from JSON text; `label` names the source in errors.
  static Tokenizer from_json(std::string_view json, const std::string& label);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Ids of `text` (UTF-8; InvalidArgument if it is not). Added tokens such as "<|image|>" in the
  // text become their ids. add_special_tokens applies the post-processor's template (BOS/EOS).
  // Thread-safe.
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = true) const;

  // Text of `ids`; with skip_special_tokens the special added tokens are left out. Bytes that do
  // not form UTF-8 become U+FFFD. InvalidArgument for an id that is not in the vocabulary.
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const;

  // Added tokens first, then the model vocabulary.
  std::optional<int32_t> token_to_id(std::string_view token) const;
  // The token string; InvalidArgument for an unknown id.
  std::string id_to_token(int32_t id) const;
  bool is_special(int32_t id) const;
  // One past the largest id of the model vocabulary and the added tokens.
  int32_t vocab_size() const;

 private:
  Tokenizer();
  // The token strings of `ids` as the decoder chain expects them.
  std::vector<std::string> tokens_for_decode(std::span<const int32_t> ids,
                                             bool skip_special_tokens) const;
  void encode_text_piece(const std::string& text, bool at_text_start,
                         std::vector<int32_t>& ids) const;

  std::unique_ptr<text::Normalizer> normalizer_;
  std::unique_ptr<text::PreTokenizer> pre_tokenizer_;
  std::unique_ptr<text::BpeModel> model_;
  std::unique_ptr<text::PostProcessor> post_processor_;
  std::unique_ptr<text::Decoder> decoder_;
  std::unique_ptr<text::AddedVocabulary> added_;
};

}  // namespace falcon
