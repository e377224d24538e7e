// The answer to a prediction: the reference server's Response schema (flat timings,
// masks with COCO RLE), plus the CLI's `tokens` and `timings_ms` so an answer can be set
// beside `falcon detect|segment|ocr` output for the same request.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "falcon/engine.h"
#include "job.h"

namespace falcon::server {

struct ResponseMeta {
  std::string id;     // "pred_" + 12 hex digits
  std::string model;  // /v1/models id of the loaded model
  int64_t created = 0;
  Task task = Task::Detection;
  std::string query;
  double total_ms = 0;  // arrival to completion, as the server saw it
};

nlohmann::json prediction_response(const Result& result, const BatchStats& stats,
                                   const ResponseMeta& meta);

// "pred_" and 12 random hex digits, as the reference.
std::string new_prediction_id();

// The /v1/models id: falcon-perception | falcon-perception-300m | falcon-ocr.
std::string model_name(const ModelInfo& info);

// The model_id /v1/health reports when --model-id is not given: the Hugging Face id of
// the published model with this variant, as the reference echoes its hf_model_id.
std::string default_model_id(const ModelInfo& info);

// Serialises for the wire; invalid UTF-8 (a token cut mid-character) becomes U+FFFD
// instead of an exception.
std::string dump_json(const nlohmann::json& j);

}  // namespace falcon::server
