// The Falcon Perception / Falcon OCR transformer: one forward pass for the prompt (prefill)
// and one for a batch of single-token decode steps, on any device, built only from ops.
#pragma once

#include <array>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "core/tensor.h"
#include "model/config.h"
#include "model/kv_cache.h"
#include "model/weights.h"
#include "ops/cuda_graph.h"
#include "ops/linear.h"

namespace falcon {

// The prompt as the model reads it (see model/prompt.h for how it is built).
struct PromptTensors {
  Tensor ids;       // [S] I32, CPU
  Tensor pos_t;     // [S] I32, CPU
  Tensor pos_hw;    // [S, 2] F32, CPU
  Tensor patches;   // [P, patch_dim] F32 or BF16 (patch_dtype()), CPU; undefined without an image
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

// One sequence's input to a batched decode step over the paged KV cache.
struct PagedRow {
  int32_t token = 0;
  int32_t pos_t = 0;
  std::optional<std::array<float, 2>> coord_xy;
  std::optional<std::array<float, 2>> size_hw;
  const std::vector<int32_t>* blocks = nullptr;  // the sequence's blocks (room for length + 1)
  int64_t length = 0;                            // tokens cached before this step
};

// A batched step's outputs: rows [0, B) of hidden [B', D] and logits [B', V] (device views,
// valid until the next step), and each row's argmax token (host).
struct DecodeOutput {
  Tensor hidden, logits;
  std::vector<int32_t> argmax;
};

struct DecodeGraph;  // persistent buffers (and on CUDA the captured graph) of one batch shape

class FalconPerceptionModel {
 public:
  FalconPerceptionModel(ModelConfig config, ModelWeights weights, Device device, DType activation_dtype);

  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }
  Device device() const { return device_; }
  DType activation_dtype() const { return act_; }
  // The dtype a prompt's patches are best built in: BF16 where the model computes in bf16 on
  // CUDA (they go up as bf16), F32 elsewhere. Either dtype is accepted.
  DType patch_dtype() const { return device_ == Device::CUDA && act_ == DType::BF16 ? DType::BF16 : DType::F32; }

  KvCache new_cache(int64_t capacity) const;

  // Runs prompt rows [start, S) with cache rows [0, start) already filled (start > 0 reuses an
  // image prefix); appends rows to the cache.
  PrefillResult prefill(const PromptTensors& prompt, int64_t start, KvCache& cache) const;
  // Several whole prompts in one forward pass ("packed"): their rows are stacked, so every
  // product runs once over all of them; attention runs per prompt over its own rows. Prompt i
  // occupies cache rows [offset_i, offset_i + S_i) (offsets: running sums of the lengths);
  // the cache must hold them all. One result per prompt (hidden: a view of its rows).
  std::vector<PrefillResult> prefill_packed(const std::vector<const PromptTensors*>& prompts, KvCache& cache) const;

  // One decode step for each row; hidden [B, D] (final-norm) and logits [B, V] on the device.
  void decode(const std::vector<DecodeRow>& rows, Tensor& hidden, Tensor& logits) const;

  // One decode step for each row over the paged cache (decode text tokens only: no image rows
  // after the prompt). On CUDA the step is captured into a CUDA graph per (batch bucket,
  // block-table width, pool generation) and replayed: host work is one upload, the graph
  // launch and the read of the argmax tokens.
  void decode_paged(const std::vector<PagedRow>& rows, KvPool& pool, DecodeOutput& out) const;
  // Copies cache rows [0, n) of a prefill into the pool, token t into blocks[t / block_size].
  void write_to_pool(KvCache& cache, int64_t n, const std::vector<int32_t>& blocks, KvPool& pool) const;
  KvPool new_pool(int64_t tokens) const;
  // Waits until the device has finished the work queued so far (for honest phase timings).
  void wait() const;

  ~FalconPerceptionModel();

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
  // A small host input (ids, positions) on the model's device, queued without waiting for it.
  Tensor input_to_device(const Tensor& host) const;
  // Rows [0, n_i) of each host f32 tensor, stacked on the device in the activation dtype.
  Tensor stacked_to_device(const std::vector<const Tensor*>& parts) const;
  Tensor act(const Shape& shape) const { return Tensor::empty(shape, act_, device_); }
  ops::LinearPrologue norm_first(Tensor& scratch) const;

  void run_decode_layers(DecodeGraph& g, KvPool& pool) const;
  // Prompt rows [start, total) of `p`, whose cache rows start at `base` (prefill and
  // prefill_packed share one forward pass).
  struct PrefillSegment {
    const PromptTensors* p;
    int64_t start;
    int64_t base;
  };
  std::vector<PrefillResult> run_prefill(const std::vector<PrefillSegment>& segs, KvCache& cache) const;

  ModelConfig config_;
  ModelWeights weights_;
  mutable std::map<std::pair<int64_t, int64_t>, std::unique_ptr<DecodeGraph>> graphs_;
  mutable uint64_t graphs_generation_ = 0;
  mutable bool use_graphs_ = true;
  mutable std::unique_ptr<ops::cuda::PinnedUpload> patch_upload_;  // CUDA + BF16: patches go up from here
  Device device_;
  DType act_;
  float block_norm_eps_;  // RMSNorm inside blocks: torch's default eps for f32
};

}  // namespace falcon
