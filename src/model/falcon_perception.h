// The Falcon Perception / Falcon OCR transformer: one forward pass for the prompt (prefill)
// and one for a batch of single-token decode steps, on any device, built only from ops.
#pragma once

#include <array>
#include <optional>
#include <vector>

#include "core/tensor.h"
#include "model/config.h"
#include "model/kv_cache.h"
#include "model/weights.h"

namespace falcon {

// The prompt as the model reads it (see model/prompt.h for how it is built).
struct PromptTensors {
  Tensor ids;       // [S] I32, CPU
  Tensor pos_t;     // [S] I32, CPU
  Tensor pos_hw;    // [S, 2] F32, CPU
  Tensor patches;   // [P, patch_dim] F32, CPU; undefined when the prompt has no image
  int64_t patch_start = 0;  // index of the first img token (P consecutive img tokens)
  int64_t image_begin = 0;  // bidirectional span: image_cls .. last img token (exclusive end)
  int64_t image_end = 0;
};

struct PrefillResult {
  Tensor hidden;       // [S - start, D] final-norm hidden states of the rows run, on the device
  Tensor logits_last;  // [1, V] logits of the last prompt row, on the device
};

// One sequence's input to a decode step.
struct DecodeRow {
  int32_t token = 0;
  int32_t pos_t = 0;
  // The value a <|coord|> / <|size|> token carries: its embedding becomes the head's encoding.
  std::optional<std::array<float, 2>> coord_xy;
  std::optional<std::array<float, 2>> size_hw;
  KvCache* cache = nullptr;  // holds the sequence so far; the step appends one token
  int64_t image_begin = 0;
  int64_t image_end = 0;
};

class FalconPerceptionModel {
 public:
  FalconPerceptionModel(ModelConfig config, ModelWeights weights, Device device, DType activation_dtype);

  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }
  Device device() const { return device_; }
  DType activation_dtype() const { return act_; }

  KvCache new_cache(int64_t capacity) const;

  // Runs prompt rows [start, S) with cache rows [0, start) already filled (start > 0 reuses an
  // image prefix); appends rows to the cache.
  PrefillResult prefill(const PromptTensors& prompt, int64_t start, KvCache& cache) const;

  // One decode step for each row; hidden [B, D] (final-norm) and logits [B, V] on the device.
  void decode(const std::vector<DecodeRow>& rows, Tensor& hidden, Tensor& logits) const;

  // Perception heads on final-norm hidden rows [B, D]: bin logits [B, out] as F32 on the CPU.
  Tensor coord_logits(const Tensor& hidden) const;
  Tensor size_logits(const Tensor& hidden) const;
  // The Fourier encodings fed back for a <|coord|> / <|size|> token: [1, D] on the device.
  Tensor encode_coord(std::array<float, 2> xy) const;
  Tensor encode_size(std::array<float, 2> hw) const;

 private:
  Tensor box_head_logits(const BoxHeadWeights& head, const Tensor& hidden) const;
  Tensor fourier_encode(const BoxHeadWeights& head, std::array<float, 2> v) const;
  Tensor to_device_activation(const Tensor& host_f32) const;
  Tensor act(const Shape& shape) const { return Tensor::empty(shape, act_, device_); }

  ModelConfig config_;
  ModelWeights weights_;
  Device device_;
  DType act_;
  float block_norm_eps_;  // RMSNorm inside blocks: torch's default eps for f32
};

}  // namespace falcon
