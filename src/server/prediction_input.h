// A prediction request as the reference server accepts it (JSON body or multipart form),
// checked and turned into an engine Request.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "falcon/engine.h"

namespace falcon::server {

struct InputPolicy {
  bool allow_url = false;
  bool allow_forced_tokens = false;
  int64_t max_url_bytes = int64_t(32) << 20;
  double url_timeout_s = 30;
};

struct PredictionInput {
  Request request;      // image bytes, task, query, sizes, sampling
  std::string query;    // echoed in the answer
  bool stream = false;  // server-sent events (OCR text as it is decoded)
  // forced_tokens as given (names or decimal ids); the worker maps them to ids, since only
  // its thread may use the engine.
  std::vector<std::string> forced_tokens;
};

// One field of a multipart form.
struct FormField {
  std::string content;
  std::string filename;
  std::string content_type;
};
using FormFields = std::map<std::string, FormField>;

// Both throw ApiError: 400 for bad content (image, base64, UTF-8, a task the model does
// not do), 422 for a body that breaks the schema (missing field, wrong type, unknown task).
PredictionInput parse_prediction_json(std::string_view body, const ModelInfo& model,
                                      const InputPolicy& policy);
PredictionInput parse_prediction_form(const FormFields& form, const ModelInfo& model,
                                      const InputPolicy& policy);

}  // namespace falcon::server
