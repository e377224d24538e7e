#include "engine/result_json.h"

namespace falcon {

nlohmann::json detection_to_json(const Detection& d) {
  nlohmann::json j;
  j["bbox"] = {d.bbox[0], d.bbox[1], d.bbox[2], d.bbox[3]};
  j["center"] = {d.x, d.y};
  j["size"] = {d.h, d.w};
  if (d.mask) {
    j["mask"] = {{"size", {d.mask->height, d.mask->width}}, {"counts", d.mask->rle_counts}};
    j["area"] = d.mask->area;
  }
  return j;
}

nlohmann::json result_to_json(const Result& r) {
  nlohmann::json j;
  j["tokens"] = r.tokens;
  j["text"] = r.text;
  j["detections"] = nlohmann::json::array();
  for (const Detection& d : r.detections) j["detections"].push_back(detection_to_json(d));
  j["image_width"] = r.image_width;
  j["image_height"] = r.image_height;
  j["input_tokens"] = r.input_tokens;
  j["output_tokens"] = r.output_tokens;
  j["cached_tokens"] = r.cached_tokens;
  j["timings_ms"] = {{"queue", r.timings.queue_ms},
                     {"preprocess", r.timings.preprocess_ms},
                     {"prefill", r.timings.prefill_ms},
                     {"prefill_host", r.timings.prefill_host_ms},
                     {"segmentation", r.timings.segmentation_ms},
                     {"decode", r.timings.decode_ms},
                     {"total", r.timings.total_ms}};
  return j;
}

}  // namespace falcon
