// One request in flight: its prompt, KV cache, decoding state and what it has produced.
#pragma once

#include <array>
#include <chrono>
#include <exception>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "falcon/engine.h"
#include "model/falcon_perception.h"
#include "model/kv_cache.h"
#include "model/segmentation.h"
#include "text/stream_decoder.h"

namespace falcon {

struct Sequence {
  Sequence() = default;
  Sequence(const Sequence&) = delete;
  Sequence& operator=(const Sequence&) = delete;
  ~Sequence() {
    if (pool) pool->release(blocks);
  }

  Engine::RequestId id = 0;
  Request request;
  Engine::DoneCallback done;
  std::chrono::steady_clock::time_point submitted, started;

  // Prompt and cache.
  PromptTensors prompt;
  std::string image_key;  // the image cache's key (empty when the cache is off)
  Tensor pixels;  // [H, W, 3] preprocessed image (dump, segmentation)
  int image_width = 0, image_height = 0;
  KvCache cache;  // contiguous cache: the prefill's (paged mode), or the whole sequence's
  // Paged mode: the sequence's blocks in the engine's pool and the tokens cached there.
  KvPool* pool = nullptr;
  std::vector<int32_t> blocks;
  int64_t kv_length = 0;
  int32_t last_argmax = -1;  // the device's argmax of last_logits (-1: not computed)
  int max_new_tokens = 0;
  std::mt19937_64 rng;

  // Decoding state: the last hidden row and logits (on the device) choose the next token.
  Tensor last_hidden;  // [1, D]
  Tensor last_logits;  // [1, V]
  int32_t last_pos_t = 0;
  std::vector<int32_t> tokens;
  std::vector<std::array<float, 2>> coord_history;
  std::optional<std::array<float, 2>> pending_coord, pending_size;
  bool finish_after_feed = false;
  std::unique_ptr<TokenStreamDecoder> stream;  // Request::on_text  // the stop token is fed only to record its step (dump)

  // Objects under construction: coord then size (then seg).
  std::vector<Detection> detections;
  std::optional<std::array<float, 2>> open_xy;
  std::vector<int> seg_detection;   // which detection each <|seg|> belongs to
  std::vector<Tensor> segm_embeds;  // one [S] F32 CPU row per <|seg|>

  // Segmentation: features of the image (after prefill) and the <|seg|> embeddings.
  int64_t canvas = 0;
  Tensor hr_features;  // (S, 8 gh, 8 gw) F32 CPU
  bool reused_prefix = false;  // the image block came from the engine's image cache
  bool started_ok = false;     // prefilled in a packed group
  std::exception_ptr start_error;  // the packed group's failure

  // Dump: per-step rows (F32, CPU).
  bool dumping = false;
  std::map<std::string, Tensor> dump;
  std::vector<Tensor> step_logits, step_hidden;
  std::vector<std::array<float, 2>> step_xy, step_hw;

  Result result;
};

}  // namespace falcon
