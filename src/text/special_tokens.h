// The ids of the control tokens a Falcon Perception / OCR model directory names: image block
// tokens, heads' tokens, stop tokens. Resolved through the tokenizer from the token strings in
// tokenizer_config.json and special_tokens_map.json, never hard-coded.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "text/tokenizer.h"

namespace falcon {

struct SpecialTokens {
  int32_t eos = -1;
  int32_t pad = -1;
  int32_t image = -1;      // <|image|>: one per image patch, and the prompt placeholder
  int32_t image_cls = -1;  // opens the image block
  std::array<int32_t, 4> reg{-1, -1, -1, -1};  // the four register tokens after image_cls
  int32_t end_of_image = -1;
  int32_t coord = -1;
  int32_t size = -1;
  int32_t seg = -1;
  std::optional<int32_t> end_of_query;  // a second stop token
  std::optional<int32_t> start_of_query;
  std::optional<int32_t> start_of_image;
  std::optional<int32_t> image_row_sep;
  std::optional<int32_t> bos;
  // Every "<name>" of special_tokens_map.json and model_specific_special_tokens (e.g.
  // "image_token") that names a string, with its token string.
  std::map<std::string, std::string> token_strings;
};

// Reads `model_dir`/tokenizer_config.json and special_tokens_map.json (either may be missing)
// and resolves each token string with `tokenizer`. A name missing from both files falls back to
// the id in config.json (eos_id, img_id, ...), then to the conventional token string of the
// published models if the vocabulary has it. FileError naming the file and token when a
// required token cannot be resolved or a named string is not in the vocabulary.
SpecialTokens load_special_tokens(const std::string& model_dir, const Tokenizer& tokenizer);

}  // namespace falcon
