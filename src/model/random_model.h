// Writes a model directory with random weights and the real file layout: for benchmarks at
// real dimensions (a step costs the same whatever the weights) and for tests on shapes no
// fixture covers.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "core/dtype.h"
#include "core/tensor.h"
#include "model/config.h"

namespace falcon {

// The dimensions of a published variant ("perception", "perception-300m", "ocr").
ModelConfig published_config(std::string_view variant);

// Writes config.json and model.safetensors (weights in `dtype`: F32, BF16 or F16) into
// `out_dir` (created if needed) and copies the tokenizer files from `tokenizer_dir`.
void write_random_model(const ModelConfig& config, DType dtype, const std::string& tokenizer_dir,
                        const std::string& out_dir, uint64_t seed,
                        const std::function<void(double)>& progress = nullptr);

}  // namespace falcon
