#include "prediction_input.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "api_error.h"
#include "base64.h"
#include "image_fetch.h"
#include "io/image.h"
#include "utf8.h"

namespace falcon::server {

namespace {

using nlohmann::json;

ApiError schema_error(const std::string& message) {
  return ApiError(422, "invalid_field", message);
}

// The request's task: given, or the model's first (segmentation for the full perception
// model, as in the reference; detection or ocr_plain for the models that do only that).
Task resolve_task(const std::string* name, const ModelInfo& model) {
  if (!name) return task_from_name(model.supported_tasks.front());
  if (*name == "ocr_layout") {
    throw ApiError(400, "unsupported_task",
                   "task 'ocr_layout' is not supported by this server; use 'ocr_plain'");
  }
  Task task;
  try {
    task = task_from_name(*name);
  } catch (const InvalidArgument&) {
    throw schema_error("task must be one of segmentation, detection, ocr_plain; got '" + *name +
                       "'");
  }
  const std::string canonical = task_name(task);
  if (std::find(model.supported_tasks.begin(), model.supported_tasks.end(), canonical) ==
      model.supported_tasks.end()) {
    std::string supported;
    for (const auto& t : model.supported_tasks) supported += (supported.empty() ? "" : ", ") + t;
    if (task == Task::Segmentation && supported == "detection") {  // the reference's words
      throw ApiError(
          400, "unsupported_task",
          "Segmentation is not supported by the loaded model. Use task='detection' instead.");
    }
    throw ApiError(400, "unsupported_task",
                   "task '" + canonical + "' is not supported by the loaded " + model.variant +
                       " model (it supports: " + supported + ")");
  }
  return task;
}

// Checks the bytes name a decodable format before the request waits in the queue.
void check_image_bytes(const std::string& bytes) {
  if (bytes.empty()) throw ApiError(400, "invalid_image", "the image is empty");
  try {
    io::detect_image_format(bytes);
  } catch (const Unsupported& e) {
    throw ApiError(400, "unsupported_image", std::string("image: ") + e.what());
  } catch (const Error& e) {
    throw ApiError(400, "invalid_image", std::string("image: ") + e.what());
  }
}

void set_query(PredictionInput& in, const std::string* query, Task task) {
  if (query) {
    if (!is_valid_utf8(*query)) throw ApiError(400, "invalid_utf8", "query is not valid UTF-8");
    in.query = *query;
  } else if (task != Task::OcrPlain) {
    throw ApiError(422, "missing_field", "query is required for " + std::string(task_name(task)));
  }
  if (task != Task::OcrPlain) {
    if (in.query.empty())
      throw ApiError(400, "invalid_query", "query is empty: say what to find in the image");
    in.request.query = in.query;
  }
}

int json_int(const json& body, const char* name, int lo, int hi) {
  const json& v = body.at(name);
  // Pydantic accepts integral floats (8192.0) for int fields; so does this.
  if (!v.is_number() || (v.is_number_float() && std::trunc(v.get<double>()) != v.get<double>())) {
    throw schema_error(std::string(name) + " must be an integer");
  }
  const double x = v.get<double>();
  if (x < lo || x > hi) {
    throw schema_error(std::string(name) + " must lie in [" + std::to_string(lo) + ", " +
                       std::to_string(hi) + "]");
  }
  return int(x);
}

int form_int(const std::string& name, const std::string& s, int lo, int hi) {
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(s.c_str(), &end, 10);
  if (s.empty() || errno || *end || v < lo || v > hi) {
    throw schema_error(name + " must be an integer in [" + std::to_string(lo) + ", " +
                       std::to_string(hi) + "], got '" + s + "'");
  }
  return int(v);
}

bool form_bool(const std::string& name, const std::string& s) {
  if (s == "true" || s == "1" || s == "on" || s == "yes") return true;
  if (s == "false" || s == "0" || s == "off" || s == "no" || s.empty()) return false;
  throw schema_error(name + " must be true or false");
}

void check_forced_tokens_allowed(const InputPolicy& policy) {
  if (!policy.allow_forced_tokens) {
    throw ApiError(
        400, "forced_tokens_disabled",
        "forced_tokens is disabled on this server (start it with --allow-forced-tokens)");
  }
}

// Limits shared by both forms; wider ranges are the engine's to refuse.
constexpr int kMaxTokens = 1 << 20;
constexpr int kMaxSide = 1 << 16;

}  // namespace

PredictionInput parse_prediction_json(std::string_view text, const ModelInfo& model,
                                      const InputPolicy& policy) {
  json body;
  try {
    body = json::parse(text);
  } catch (const json::parse_error& e) {
    // nlohmann refuses ill-formed UTF-8 inside strings; say so plainly.
    const std::string what = e.what();
    if (what.find("UTF-8") != std::string::npos || what.find("surrogate") != std::string::npos) {
      throw ApiError(400, "invalid_utf8", "the body has a string that is not valid UTF-8");
    }
    throw ApiError(400, "invalid_json", std::string("the body is not valid JSON: ") + e.what());
  }
  if (!body.is_object()) throw schema_error("the body must be a JSON object");

  auto optional_string = [&](const char* name) -> const std::string* {
    const auto it = body.find(name);
    if (it == body.end() || it->is_null()) return nullptr;
    if (!it->is_string()) throw schema_error(std::string(name) + " must be a string");
    return it->get_ptr<const std::string*>();
  };

  PredictionInput in;
  const Task task = resolve_task(optional_string("task"), model);
  in.request.task = task;
  set_query(in, optional_string("query"), task);
  if (body.contains("max_tokens"))
    in.request.sampling.max_new_tokens = json_int(body, "max_tokens", 1, kMaxTokens);
  if (body.contains("min_image_size"))
    in.request.min_image_size = json_int(body, "min_image_size", 0, kMaxSide);
  if (body.contains("max_image_size"))
    in.request.max_image_size = json_int(body, "max_image_size", 0, kMaxSide);
  if (const auto it = body.find("stream"); it != body.end() && !it->is_null()) {
    if (!it->is_boolean()) throw schema_error("stream must be true or false");
    in.stream = it->get<bool>();
  }
  if (const auto it = body.find("forced_tokens"); it != body.end() && !it->is_null()) {
    check_forced_tokens_allowed(policy);
    if (!it->is_array())
      throw schema_error("forced_tokens must be an array of token strings or ids");
    for (const json& t : *it) {
      if (t.is_string()) {
        in.forced_tokens.push_back(t.get<std::string>());
      } else if (t.is_number_integer()) {
        in.forced_tokens.push_back(std::to_string(t.get<int64_t>()));
      } else {
        throw schema_error("forced_tokens must be an array of token strings or ids");
      }
    }
  }

  const auto image = body.find("image");
  if (image == body.end() || image->is_null())
    throw ApiError(422, "missing_field", "image is required");
  if (!image->is_object())
    throw schema_error("image must be an object: {\"base64\": ...} or {\"url\": ...}");
  auto image_field = [&](const char* name) -> std::string {
    const auto it = image->find(name);
    if (it == image->end() || it->is_null()) return {};
    if (!it->is_string()) throw schema_error(std::string("image.") + name + " must be a string");
    return it->get<std::string>();
  };
  const std::string b64 = image_field("base64");
  const std::string url = image_field("url");
  if (!b64.empty()) {  // base64 wins when both are given, as in the reference
    std::optional<std::string> bytes = decode_base64(b64);
    if (!bytes) throw ApiError(400, "invalid_base64", "image.base64 is not valid base64");
    in.request.image_bytes = std::move(*bytes);
  } else if (!url.empty()) {
    if (!policy.allow_url) {
      throw ApiError(400, "url_disabled",
                     "image.url is disabled on this server (start it with --allow-url); send "
                     "image.base64 instead");
    }
    in.request.image_bytes = fetch_image_url(url, policy.max_url_bytes, policy.url_timeout_s);
  } else {
    throw ApiError(400, "missing_image", "Either image.url or image.base64 must be provided.");
  }
  check_image_bytes(in.request.image_bytes);
  return in;
}

PredictionInput parse_prediction_form(const FormFields& form, const ModelInfo& model,
                                      const InputPolicy& policy) {
  auto field = [&](const char* name) -> const std::string* {
    const auto it = form.find(name);
    return it == form.end() ? nullptr : &it->second.content;
  };
  PredictionInput in;
  const Task task = resolve_task(field("task"), model);
  in.request.task = task;
  set_query(in, field("query"), task);
  if (const auto* v = field("max_tokens"))
    in.request.sampling.max_new_tokens = form_int("max_tokens", *v, 1, kMaxTokens);
  if (const auto* v = field("min_image_size"))
    in.request.min_image_size = form_int("min_image_size", *v, 0, kMaxSide);
  if (const auto* v = field("max_image_size"))
    in.request.max_image_size = form_int("max_image_size", *v, 0, kMaxSide);
  if (const auto* v = field("stream")) in.stream = form_bool("stream", *v);
  if (const auto* v = field("forced_tokens")) {
    check_forced_tokens_allowed(policy);
    size_t b = 0;
    while (b <= v->size()) {
      const size_t e = std::min(v->find(',', b), v->size());
      std::string item = v->substr(b, e - b);
      item.erase(0, item.find_first_not_of(' '));
      item.erase(item.find_last_not_of(' ') + 1);
      if (!item.empty()) in.forced_tokens.push_back(item);
      b = e + 1;
    }
  }
  const auto image = form.find("image");
  if (image == form.end())
    throw ApiError(422, "missing_field", "image is required (a file field named 'image')");
  in.request.image_bytes = image->second.content;
  check_image_bytes(in.request.image_bytes);
  return in;
}

}  // namespace falcon::server
