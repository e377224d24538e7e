// The transformer's weights, checked against the config and prepared for one device.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "core/safetensors.h"
#include "core/tensor.h"
#include "model/config.h"

namespace falcon {

struct LayerWeights {
  Tensor wqkv;   // linear [(H + 2K) hd, D]
  Tensor wo;     // linear [D, H hd]
  Tensor w13;    // linear [2F, D], rows interleaved gate/up
  Tensor w2;     // linear [D, F]
  Tensor sinks;  // [H] F32
};

// Fourier encoder (value -> embedding) and MLP decoder (hidden -> bins) of coord or size.
struct BoxHeadWeights {
  Tensor embed;      // [enc/2, 2] F32, on the CPU: the features are computed on the host
  Tensor transform;  // linear [D, enc]
  Tensor w1;         // linear [dec, D]
  Tensor w2;         // linear [out, dec]
};

struct ModelWeights {
  Tensor tok_embeddings;  // [V, D] as stored (the embedding op converts rows)
  Tensor img_projector;   // linear [D, patch_dim]
  std::vector<LayerWeights> layers;
  Tensor norm;            // [D] F32
  Tensor output;          // linear [V, D]
  Tensor golden;          // [H, hd/4, 2] F32 (freqs_cis_golden)
  std::optional<BoxHeadWeights> coord, size;
  DType linear_dtype = DType::F32;  // storage of the linear weights
  DType file_dtype = DType::F32;    // dtype of the big tensors in the file
  int64_t parameter_count = 0;      // every tensor in the file
};

using LoadProgress = std::function<void(std::string_view stage, double fraction)>;

// Checks every tensor the config implies (name, shape) and prepares it for `device`, with
// linear weights stored as `linear_dtype`. Throws FileError naming the file and tensor.
ModelWeights load_model_weights(const ModelConfig& config, const SafetensorsFile& file, Device device,
                                DType linear_dtype, const LoadProgress& progress = nullptr);

// A tensor from the file with its shape checked; F32 copy on `device` (small tensors).
Tensor load_f32(const SafetensorsFile& file, const std::string& name, const Shape& shape, Device device);
// The mapped tensor with its shape checked (no copy).
Tensor checked_view(const SafetensorsFile& file, const std::string& name, const Shape& shape);

}  // namespace falcon
