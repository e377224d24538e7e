// Post-processors of tokenizer.json ("post_processor"): the special tokens that
// encode(..., add_special_tokens=true) puts around a single sequence (BOS/EOS templates).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "text/json_field.h"

namespace falcon::text {

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  virtual void process(std::vector<int32_t>& ids, bool add_special_tokens) const = 0;
};

// Builds the processor described by `config` (TemplateProcessing, ByteLevel, BertProcessing,
// RobertaProcessing, Sequence).
std::unique_ptr<PostProcessor> parse_post_processor(const JsonField& config);

}  // namespace falcon::text
