// Normalizers of tokenizer.json ("normalizer"): text rewrites applied to each piece of the input
// that is not an added token, before pre-tokenization.
#pragma once

#include <memory>
#include <string>

#include "text/json_field.h"

namespace falcon::text {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  // Rewrites valid UTF-8 `text` in place.
  virtual void normalize(std::string& text) const = 0;
};

// Builds the normalizer described by `config` (NFC, NFD, NFKC, NFKD, Lowercase, Strip,
// StripAccents, Prepend, Replace, ByteLevel, Sequence). Throws FileError naming the field for
// malformed or unsupported configurations.
std::unique_ptr<Normalizer> parse_normalizer(const JsonField& config);

}  // namespace falcon::text
