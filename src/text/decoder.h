// Decoders of tokenizer.json ("decoder"): turn the token strings of a sequence of ids back into
// text. Each step rewrites the list of token strings; the results are concatenated at the end.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "text/json_field.h"

namespace falcon::text {

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};

// Builds the decoder described by `config` (ByteLevel, Metaspace, ByteFallback, Fuse, Strip,
// Replace, BPEDecoder, Sequence).
std::unique_ptr<Decoder> parse_decoder(const JsonField& config);

}  // namespace falcon::text
