#include "prediction_response.h"

#include <algorithm>
#include <cstdio>
#include <mutex>
#include <random>

#include "engine/result_json.h"

namespace falcon::server {

using nlohmann::json;

std::string model_name(const ModelInfo& info) {
  if (info.variant == "ocr") return "falcon-ocr";
  if (info.variant == "perception-300m" ||
      std::find(info.supported_tasks.begin(), info.supported_tasks.end(), "segmentation") ==
          info.supported_tasks.end()) {
    return "falcon-perception-300m";
  }
  return "falcon-perception";
}

std::string default_model_id(const ModelInfo& info) {
  if (info.variant == "ocr") return "tiiuae/Falcon-OCR";
  if (model_name(info) == "falcon-perception-300m") return "tiiuae/Falcon-Perception-300M";
  return "tiiuae/Falcon-Perception";
}

std::string new_prediction_id() {
  static std::mutex mutex;
  static std::mt19937_64 rng{std::random_device{}()};
  uint64_t v;
  {
    std::lock_guard lk(mutex);
    v = rng();
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "pred_%012llx",
                static_cast<unsigned long long>(v & 0xFFFFFFFFFFFFull));
  return buf;
}

std::string dump_json(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

json prediction_response(const Result& r, const BatchStats& stats, const ResponseMeta& meta) {
  json masks = json::array();
  for (size_t i = 0; i < r.detections.size(); ++i) {
    const Detection& d = r.detections[i];
    // The CLI's JSON for the box and mask, so both print the same numbers.
    const json cli = detection_to_json(d);
    json m = {{"label", "object " + std::to_string(i + 1)}, {"bbox", cli["bbox"]}};
    if (d.mask) {
      m["rle"] = cli["mask"];
      m["height"] = d.mask->height;
      m["width"] = d.mask->width;
      m["color"] = json::object();
    } else {  // detection: a box without a mask, as the reference answers it
      m["rle"] = json::object();
      m["height"] = r.image_height;
      m["width"] = r.image_width;
      m["color"] = nullptr;
    }
    masks.push_back(std::move(m));
  }
  const Timings& t = r.timings;
  const double inference = t.preprocess_ms + t.prefill_ms + t.segmentation_ms + t.decode_ms;
  json out = {
      {"id", meta.id},
      {"model", meta.model},
      {"created", meta.created},
      {"task", task_name(meta.task)},
      {"masks", std::move(masks)},
      {"text", r.text},
      {"query", meta.query},
      {"prompt_type", "text"},
      {"image_width", r.image_width},
      {"image_height", r.image_height},
      {"input_tokens", r.input_tokens},
      {"output_tokens", r.output_tokens},
      {"cached_tokens", r.cached_tokens},  // prompt tokens whose KV rows the image cache gave
      {"prefill_batch", r.prefill_batch},  // prompts prefilled together with this one
      // The reference's timing fields: inference is the sum of the phases, queue the rest
      // of the time the request spent in the server.
      {"inference_time_ms", inference},
      {"queue_ms", std::max(0.0, meta.total_ms - inference)},
      {"total_time_ms", meta.total_ms},
      {"tokenize_time_ms", t.preprocess_ms},
      {"prefill_time_ms", t.prefill_ms},
      {"decode_time_ms", t.decode_ms},
      {"finalize_time_ms", t.segmentation_ms},
      {"num_decode_steps", stats.decode_steps},
      {"avg_decode_batch_size",
       stats.decode_steps ? double(stats.batch_size_sum) / stats.decode_steps : 0.0},
      {"prefill_batch_size", 1},  // the engine prefills each request alone
      {"prefill_tokens", r.input_tokens},
      {"num_preemptions", 0},
      {"layout_regions", json::array()},
      {"combined_mask", nullptr},
  };
  const json cli = result_to_json(r);
  out["tokens"] = cli["tokens"];
  out["timings_ms"] = cli["timings_ms"];
  return out;
}

}  // namespace falcon::server
