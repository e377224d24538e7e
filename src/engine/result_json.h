// The JSON form of a result, shared by the CLI and the server so both answer alike.
#pragma once

#include <nlohmann/json.hpp>

#include "falcon/engine.h"

namespace falcon {

nlohmann::json detection_to_json(const Detection& d);
// tokens, text, detections, image_width/height, input/output_tokens, timings_ms.
nlohmann::json result_to_json(const Result& r);

}  // namespace falcon
