// The public C++ API: load a model directory once, run detection, segmentation and OCR
// requests on it, one at a time (run) or many at once with continuous batching
// (submit + step).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "falcon/error.h"

namespace falcon {

enum class Task { Detection, Segmentation, OcrPlain };
const char* task_name(Task t);             // "detection" | "segmentation" | "ocr_plain"
Task task_from_name(std::string_view name);  // also accepts "ocr"; throws InvalidArgument

struct SamplingOptions {
  int max_new_tokens = 0;        // 0: the task's default
  float temperature = 0.f;       // 0: greedy
  int top_k = 0;                 // 0: no top-k cut
  uint64_t seed = 0;             // for temperature > 0
  float coord_dedup_threshold = 0.01f;  // 0 disables coordinate de-duplication
  bool ignore_stop = false;      // decode exactly max_new_tokens (benchmarks)
  // Teacher forcing: take these token ids in order instead of sampling (head rules still
  // apply). Decoding stops after the last one.
  std::vector<int32_t> forced_tokens;
};

struct Request {
  Task task = Task::Detection;
  std::string query;        // detection / segmentation; UTF-8
  std::string image_bytes;  // the encoded image file (PNG, JPEG, WebP, ...)
  int min_image_size = 0;   // 0: the engine default for the task
  int max_image_size = 0;
  SamplingOptions sampling;
  // Writes the run's tensors (fixture names: input_ids, pos_t, pixel_values, logits, ...)
  // to this safetensors file when set.
  std::string dump_path;
  // Keep each mask's pixels in Result (Mask::pixels), e.g. to draw or save them.
  bool keep_mask_pixels = false;
  // Called with each newly decoded piece of text (OCR streaming); may be empty.
  std::function<void(std::string_view piece)> on_text;
};

// A binary mask of the original image size, in COCO run-length form.
struct Mask {
  int height = 0;
  int width = 0;
  std::string rle_counts;        // compressed COCO string (column-major), as pycocotools writes
  std::vector<uint8_t> pixels;   // height*width row-major 0/1, kept when requested
  int64_t area = 0;
};

struct Detection {
  float x = 0, y = 0;  // center, normalised to the image
  float h = 0, w = 0;  // size, normalised
  std::array<float, 4> bbox{};  // x1, y1, x2, y2 in original-image pixels
  std::optional<Mask> mask;     // segmentation only
};

struct Timings {
  double queue_ms = 0;
  double preprocess_ms = 0;  // decode + resize + tokenize
  double prefill_ms = 0;
  double segmentation_ms = 0;  // conv + upsampler + masks
  double decode_ms = 0;
  double total_ms = 0;
  double prefill_host_ms = 0;  // of prefill_ms, the host's time to queue the pass (the rest: the device finishing)
};

struct Result {
  std::vector<int32_t> tokens;  // generated ids
  std::string text;             // decoded output (OCR: stripped, without stop tokens)
  std::vector<Detection> detections;
  int image_width = 0;
  int image_height = 0;
  int input_tokens = 0;
  int output_tokens = 0;
  int cached_tokens = 0;  // prompt tokens whose KV rows came from the image cache
  int prefill_batch = 1;  // prompts prefilled in the same forward pass as this one (packed)
  Timings timings;
};

struct ModelInfo {
  std::string variant;  // "perception" | "perception-300m" | "ocr"
  std::string model_dir;
  std::string weights_dtype;  // as stored in the file
  std::string compute_dtype;  // as used by the engine
  int dim = 0, n_layers = 0, n_heads = 0, head_dim = 0, n_kv_heads = 0, ffn_dim = 0, vocab_size = 0;
  int max_seq_len = 0;
  int64_t parameters = 0;
  std::vector<std::string> supported_tasks;
  std::string device;
};

struct EngineOptions {
  std::string model_dir;
  std::string device = "cpu";  // "cpu" | "cuda"
  std::string weight_dtype;    // "" (as stored / device default), "f32", "bf16", "f16", "q8", "q4"
  int threads = 0;             // CPU threads; 0: all cores
  int64_t max_image_pixels = 89478485;  // decoded images larger than this are refused
  int max_batch = 16;          // requests decoded together
  // Images whose prompt prefix (the image block's KV cache) and segmentation features are
  // kept for later queries on the same image; 0 disables the reuse.
  int image_cache_entries = 1;
  // Progress of long work (model load): stage name and fraction done in [0, 1].
  std::function<void(std::string_view stage, double fraction)> progress;
};

class Engine {
 public:
  // Loads config, tokenizer and weights from model_dir. Throws FileError / Unsupported with a
  // message naming the file and what is wrong.
  static std::unique_ptr<Engine> load(const EngineOptions& options);
  virtual ~Engine() = default;

  virtual const ModelInfo& info() const = 0;
  // The id of a token given as its string ("<|coord|>") or as a decimal id ("240").
  virtual std::optional<int32_t> token_id(std::string_view token) const = 0;

  // Runs one request to completion on the calling thread.
  virtual Result run(const Request& request) = 0;

  // Continuous batching. submit() validates and queues a request (throws on bad input) and
  // returns its id; step() admits queued requests (prefill) and advances every active one
  // by one decode step, calling each request's done() when it finishes; returns false when
  // nothing is queued or active. cancel() drops a queued or active request (done() is not
  // called). Not thread-safe: one thread owns the engine and calls these.
  using RequestId = uint64_t;
  using DoneCallback = std::function<void(RequestId, Result*, const std::exception_ptr&)>;
  virtual RequestId submit(Request request, DoneCallback done) = 0;
  virtual bool step() = 0;
  virtual void cancel(RequestId id) = 0;
  virtual size_t active_requests() const = 0;
};

}  // namespace falcon
