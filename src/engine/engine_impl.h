// The engine behind falcon::Engine: model files, tokenizer, forward pass, and the loop that
// admits requests, decodes them together, and finishes them.
#pragma once

#include <deque>
#include <list>
#include <memory>

#include "core/safetensors.h"
#include "engine/sequence.h"
#include "falcon/engine.h"
#include "model/config.h"
#include "model/falcon_perception.h"
#include "model/segmentation.h"
#include "text/special_tokens.h"
#include "text/tokenizer.h"

namespace falcon {

// What a query on an image computes that does not depend on the query: the image block's
// rows of the KV cache, the img-token hidden states and the segmentation features.
struct ImagePrefix {
  std::string key;               // image bytes hash + size bounds
  std::string image_bytes;       // the file's bytes: a key match is confirmed on them
  Tensor pixels;                 // [H, W, 3]
  int image_width = 0, image_height = 0;
  std::vector<int32_t> ids;      // the prefix tokens, [0, length)
  KvCache cache;                 // rows [0, length)
  Tensor img_hidden;             // (gh * gw, D) F32 CPU; models with segmentation
  int64_t canvas = 0;            // hr_features were computed on this canvas
  Tensor lr_features, hr_features;
};

class EngineImpl final : public Engine {
 public:
  explicit EngineImpl(const EngineOptions& options);

  const ModelInfo& info() const override { return info_; }
  std::optional<int32_t> token_id(std::string_view token) const override;
  Result run(const Request& request) override;
  RequestId submit(Request request, DoneCallback done) override;
  bool step() override;
  void cancel(RequestId id) override;
  size_t active_requests() const override { return active_.size() + waiting_.size(); }

 private:
  void validate(const Request& r) const;
  void prepare(Sequence& s) const;        // image decode and preprocessing, prompt (CPU; thread-safe)
  void start(Sequence& s);                // prefill, segmentation features (after prepare)
  bool packable(const Sequence& s);       // may be prefilled with others (start_packed)
  void start_packed(const std::vector<Sequence*>& group);  // one prefill for several prompts
  void after_prefill(Sequence& s, PrefillResult& pre_out, ImagePrefix* prefix, int64_t start);
  // Rows of one packed prefill: a few full-size prompts, whose activations (~60 KB a row in
  // BF16 at the 0.6B's dims) stay well inside the device memory the pool keeps.
  static constexpr int64_t kPackedPrefillRows = 16384;
  // Picks the sequence's next token and fills `row` to feed it; false when it has finished.
  bool choose_next(Sequence& s, DecodeRow& row);
  void record_step(Sequence& s, const Tensor& hidden_row, const Tensor& logits_row);
  void finish(Sequence& s);
  void finish_masks(Sequence& s);
  void write_dump(Sequence& s);
  // Decodes ids the tokenizer knows; ids past its vocabulary (a random-weight model paired
  // with a small tokenizer) are left out rather than failing the request.
  std::string decode_text(const std::vector<int32_t>& ids) const;

  EngineOptions options_;
  ModelConfig config_;
  std::unique_ptr<SafetensorsFile> weights_file_;
  std::unique_ptr<Tokenizer> tokenizer_;
  SpecialTokens special_;
  std::string image_token_;  // the prompt's image placeholder, e.g. "<|image|>"
  std::vector<int32_t> stop_tokens_;
  std::unique_ptr<FalconPerceptionModel> model_;
  std::optional<SegmentationWeights> segmentation_;  // models with do_segmentation
  Device device_ = Device::CPU;
  // Where conv_segm + AnyUp + masks run: the engine's device (FALCON_CUDA_SEGMENTATION=0: the CPU).
  Device seg_device_ = Device::CPU;
  // TF32 tensor cores for its convolutions, except in the fp32 parity mode.
  ops::MathPrecision seg_precision_ = ops::MathPrecision::F32;
  ModelInfo info_;

  // Most recently used first.
  std::list<ImagePrefix> image_cache_;
  ImagePrefix* find_prefix(const std::string& key, const std::string& image_bytes, const PromptTensors& prompt);
  void remember_prefix(ImagePrefix entry);

  // Paged KV cache for batched decode (CUDA by default; FALCON_KV_PAGED=1/0 overrides).
  // Declared before the sequences, which hand their blocks back to it when destroyed.
  std::unique_ptr<KvPool> pool_;

  RequestId next_id_ = 1;
  std::deque<std::unique_ptr<Sequence>> waiting_;
  std::list<std::unique_ptr<Sequence>> active_;
};

}  // namespace falcon
