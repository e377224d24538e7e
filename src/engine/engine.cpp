#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>

#include "core/error.h"
#include "core/parallel.h"
#include "engine/box_decoding.h"
#include "engine/engine_impl.h"
#include "engine/sampling.h"
#include "io/image.h"
#include "io/mask_rle.h"
#include "io/preprocess.h"
#include "model/prompt.h"
#include "text/stream_decoder.h"
#include "ops/convert.h"
#include "ops/op_profile.h"

namespace falcon {

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

// A [1, N] device row as F32 on the CPU.
Tensor host_f32(const Tensor& row) {
  Tensor h = row.on_cpu() ? row : row.to(Device::CPU);
  if (h.dtype() == DType::F32) return h.on_cpu() && h.raw() == row.raw() ? h.clone() : h;
  Tensor f = Tensor::empty(h.shape(), DType::F32);
  ops::convert(h, f);
  return f;
}

Tensor to_host(const Tensor& t) { return t.on_cpu() ? t : t.to(Device::CPU); }

Tensor stack_rows(const std::vector<Tensor>& rows, int64_t width) {
  Tensor out = Tensor::zeros({int64_t(rows.size()), width}, DType::F32);
  for (size_t i = 0; i < rows.size(); ++i) {
    std::memcpy(out.data<float>() + int64_t(i) * width, rows[i].data<float>(), size_t(width) * sizeof(float));
  }
  return out;
}

Tensor pairs_tensor(const std::vector<std::array<float, 2>>& v) {
  Tensor t = Tensor::zeros({int64_t(v.size()), 2}, DType::F32);
  for (size_t i = 0; i < v.size(); ++i) {
    t.data<float>()[2 * i] = v[i][0];
    t.data<float>()[2 * i + 1] = v[i][1];
  }
  return t;
}

Tensor to_i64(const Tensor& i32) {
  Tensor t = Tensor::empty(i32.shape(), DType::I64);
  for (int64_t i = 0; i < i32.numel(); ++i) t.data<int64_t>()[i] = i32.data<int32_t>()[i];
  return t;
}

DType default_activation(Device d) { return d == Device::CPU ? DType::F32 : DType::BF16; }

}  // namespace

const char* task_name(Task t) {
  switch (t) {
    case Task::Detection: return "detection";
    case Task::Segmentation: return "segmentation";
    case Task::OcrPlain: return "ocr_plain";
  }
  return "?";
}

Task task_from_name(std::string_view name) {
  if (name == "detection") return Task::Detection;
  if (name == "segmentation") return Task::Segmentation;
  if (name == "ocr_plain" || name == "ocr") return Task::OcrPlain;
  throw InvalidArgument("unknown task '" + std::string(name) + "' (expected segmentation, detection or ocr_plain)");
}

std::unique_ptr<Engine> Engine::load(const EngineOptions& options) { return std::make_unique<EngineImpl>(options); }

EngineImpl::EngineImpl(const EngineOptions& options) : options_(options) {
  namespace fs = std::filesystem;
  const std::string& dir = options.model_dir;
  if (dir.empty()) throw InvalidArgument("no model directory given");
  if (!fs::is_directory(dir)) throw FileError(dir + ": not a directory");
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json"}) {
    if (!fs::exists(fs::path(dir) / f)) {
      throw FileError(dir + ": missing " + f + " (expected a Falcon Perception / Falcon OCR export directory)");
    }
  }
  device_ = device_from_name(options.device);
  if (!device_available(device_)) {
    throw Unsupported(std::string("device '") + options.device + "' is not available" +
                      (device_ == Device::CUDA ? " (no CUDA GPU found, or a build without CUDA)" : ""));
  }
  if (options.threads > 0 || device_ == Device::CPU) set_num_threads(options.threads);
  auto progress = [&](std::string_view stage, double f) {
    if (options.progress) options.progress(stage, f);
  };
  progress("config", 0.0);
  config_ = load_model_config(dir);
  tokenizer_ = std::make_unique<Tokenizer>(Tokenizer::from_file(dir + "/tokenizer.json"));
  special_ = load_special_tokens(dir, *tokenizer_);
  image_token_ = tokenizer_->id_to_token(special_.image);
  stop_tokens_ = {special_.eos};
  if (special_.end_of_query) stop_tokens_.push_back(*special_.end_of_query);

  weights_file_ = std::make_unique<SafetensorsFile>(SafetensorsFile::open(dir + "/model.safetensors"));
  DType linear_dtype = options.weight_dtype.empty() ? DType::F32 : dtype_from_name(options.weight_dtype);
  // f32 weights on the GPU mean the parity mode: f32 activations too.
  const DType act = device_ == Device::CUDA && linear_dtype == DType::F32 && !options.weight_dtype.empty()
                        ? DType::F32
                        : default_activation(device_);
  if (options.weight_dtype.empty()) {
    // As stored on the CPU (f32 exports stay f32, bf16 stays bf16); bf16 on the GPU.
    linear_dtype = device_ == Device::CPU ? weights_file_->info("tok_embeddings.weight").dtype : DType::BF16;
  }
  ModelWeights w;
  try {
    w = load_model_weights(config_, *weights_file_, device_, linear_dtype,
                           [&](std::string_view s, double f) { progress(s, f); });
  } catch (const OutOfMemory& e) {
    // Everything allocated so far is released by the unwinding; the process stays usable.
    throw OutOfMemory(dir + ": the model's weights (" + std::to_string(fs::file_size(fs::path(dir) / "model.safetensors") >> 20) +
                      " MiB on disk, as " + dtype_name(linear_dtype) + " on " + device_name(device_) +
                      ") do not fit in the device's free memory: " + e.what());
  }
  info_.parameters = w.parameter_count;
  info_.weights_dtype = dtype_name(w.file_dtype);
  model_ = std::make_unique<FalconPerceptionModel>(config_, std::move(w), device_, act);
  {
    const char* e = std::getenv("FALCON_KV_PAGED");
    const bool paged = e ? std::string(e) != "0" : device_ == Device::CUDA;
    // Room for a few full-size prompts to start with; the pool doubles when it runs out.
    if (paged) pool_ = std::make_unique<KvPool>(model_->new_pool(std::min<int64_t>(config_.max_seq_len, 8192) * 2));
  }
  if (config_.do_segmentation) {
    progress("segmentation", 0.9);
    // The upsampler runs in f32 on the engine's device; FALCON_CUDA_SEGMENTATION=0 keeps it
    // on the CPU under a CUDA engine (a fallback for debugging: 20x slower, docs/cuda.md).
    const char* e = std::getenv("FALCON_CUDA_SEGMENTATION");
    seg_device_ = device_ == Device::CUDA && !(e && std::string(e) == "0") ? Device::CUDA : Device::CPU;
    // FALCON_SEG_PRECISION=f32|tf32 overrides (to measure the TF32 path against the fixtures).
    const char* sp = std::getenv("FALCON_SEG_PRECISION");
    const bool tf32 = sp && *sp ? std::string(sp) == "tf32" : act != DType::F32;
    seg_precision_ = tf32 ? ops::MathPrecision::TF32 : ops::MathPrecision::F32;
    segmentation_ = load_segmentation_weights(config_, *weights_file_, seg_device_,
                                              device_ == Device::CPU ? linear_dtype : DType::F32);
  }

  info_.variant = variant_name(config_.variant);
  info_.model_dir = dir;
  info_.compute_dtype = std::string(dtype_name(act)) + " activations, " + dtype_name(linear_dtype) + " weights";
  info_.dim = config_.dim;
  info_.n_layers = config_.n_layers;
  info_.n_heads = config_.n_heads;
  info_.head_dim = config_.head_dim;
  info_.n_kv_heads = config_.n_kv_heads;
  info_.ffn_dim = config_.ffn_dim;
  info_.vocab_size = config_.vocab_size;
  info_.max_seq_len = config_.max_seq_len;
  info_.device = device_name(device_);
  if (config_.variant == Variant::Ocr) {
    info_.supported_tasks = {"ocr_plain"};
  } else if (config_.do_segmentation) {
    info_.supported_tasks = {"segmentation", "detection"};
  } else {
    info_.supported_tasks = {"detection"};
  }
  progress("ready", 1.0);
}

std::optional<int32_t> EngineImpl::token_id(std::string_view token) const {
  if (!token.empty() && token.find_first_not_of("0123456789") == std::string_view::npos && token.size() < 10) {
    const int32_t id = int32_t(std::stol(std::string(token)));
    if (id < config_.vocab_size) return id;
    return std::nullopt;
  }
  return tokenizer_->token_to_id(token);
}

void EngineImpl::validate(const Request& r) const {
  const bool ocr_model = config_.variant == Variant::Ocr;
  if (r.task == Task::OcrPlain && !ocr_model) {
    throw Unsupported("this is a " + info_.variant + " model: it does detection/segmentation, not OCR");
  }
  if (r.task != Task::OcrPlain && ocr_model) {
    throw Unsupported("this is an OCR model: it does ocr_plain only, not " + std::string(task_name(r.task)));
  }
  if (r.task == Task::Segmentation && !config_.do_segmentation) {
    throw Unsupported("this model is detection-only (do_segmentation is false): use the detection task");
  }
  if (r.image_bytes.empty()) throw InvalidArgument("no image given");
  const int mn = r.min_image_size, mx = r.max_image_size;
  if (mn < 0 || mx < 0 || (mn && mx && mn > mx)) {
    throw InvalidArgument("min_image_size must be <= max_image_size and both non-negative");
  }
  if ((mn && mn < 16) || mx > 4096) throw InvalidArgument("image sizes must lie in [16, 4096]");
  if (r.sampling.max_new_tokens < 0) throw InvalidArgument("max_new_tokens must be >= 0");
  if (r.sampling.temperature < 0 || !std::isfinite(r.sampling.temperature)) {
    throw InvalidArgument("temperature must be a finite number >= 0");
  }
  for (int32_t t : r.sampling.forced_tokens) {
    if (t < 0 || t >= config_.vocab_size) throw InvalidArgument("forced token id " + std::to_string(t) + " outside the vocabulary");
  }
  if (r.task != Task::OcrPlain) prompt_for_task(r.task, r.query, image_token_);  // checks the query
}

Engine::RequestId EngineImpl::submit(Request request, DoneCallback done) {
  validate(request);
  auto s = std::make_unique<Sequence>();
  s->id = next_id_++;
  s->request = std::move(request);
  s->done = std::move(done);
  s->submitted = Clock::now();
  const Engine::RequestId id = s->id;
  waiting_.push_back(std::move(s));
  return id;
}

void EngineImpl::cancel(RequestId id) {
  for (auto it = waiting_.begin(); it != waiting_.end(); ++it) {
    if ((*it)->id == id) {
      waiting_.erase(it);
      return;
    }
  }
  for (auto it = active_.begin(); it != active_.end(); ++it) {
    if ((*it)->id == id) {
      active_.erase(it);
      return;
    }
  }
}

namespace {

// FNV-1a over the image bytes: the image cache's key, with the size bounds.
// The image cache's key: a hash of the file's bytes and the size bounds. Four independent
// multiply-xorshift lanes over 8-byte words (~0.2 ms for a 2.4 MB PNG, where a byte-serial hash
// took ~2.6 ms). Only a key: a hit is confirmed on the bytes themselves (ImagePrefix::image_bytes).
std::string image_key(const std::string& bytes, int min_size, int max_size) {
  constexpr uint64_t kMul = 0x9E3779B97F4A7C15ull;
  uint64_t lane[4] = {0x243F6A8885A308D3ull, 0x13198A2E03707344ull, 0xA4093822299F31D0ull, 0x082EFA98EC4E6C89ull};
  const auto mix = [](uint64_t h, uint64_t w) {
    h = (h ^ w) * kMul;
    return h ^ (h >> 29);
  };
  const char* p = bytes.data();
  const size_t n = bytes.size();
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    for (int k = 0; k < 4; ++k) {
      uint64_t w;
      std::memcpy(&w, p + i + 8 * k, 8);
      lane[k] = mix(lane[k], w);
    }
  }
  for (; i < n; ++i) lane[0] = mix(lane[0], uint64_t(static_cast<unsigned char>(p[i])));
  uint64_t h = n;
  for (const uint64_t l : lane) h = mix(h, l);
  return std::to_string(h) + ":" + std::to_string(n) + ":" + std::to_string(min_size) + ":" +
         std::to_string(max_size);
}

}  // namespace

ImagePrefix* EngineImpl::find_prefix(const std::string& key, const std::string& image_bytes,
                                     const PromptTensors& prompt) {
  for (auto it = image_cache_.begin(); it != image_cache_.end(); ++it) {
    if (it->key != key || it->image_bytes != image_bytes) continue;
    const int64_t n = int64_t(it->ids.size());
    if (prompt.ids.dim(0) <= n ||
        !std::equal(it->ids.begin(), it->ids.end(), prompt.ids.data<int32_t>())) {
      return nullptr;  // a prompt whose text before the image differs
    }
    image_cache_.splice(image_cache_.begin(), image_cache_, it);
    return &image_cache_.front();
  }
  return nullptr;
}

void EngineImpl::remember_prefix(ImagePrefix entry) {
  image_cache_.remove_if([&](const ImagePrefix& e) { return e.key == entry.key; });
  image_cache_.push_front(std::move(entry));
  while (int(image_cache_.size()) > options_.image_cache_entries) image_cache_.pop_back();
}

void EngineImpl::prepare(Sequence& s) const {
  const Request& r = s.request;
  s.started = Clock::now();
  s.result.timings.queue_ms = std::chrono::duration<double, std::milli>(s.started - s.submitted).count();
  const bool ocr = r.task == Task::OcrPlain;
  const int min_size = r.min_image_size ? r.min_image_size : (ocr ? 64 : 256);
  const int max_size = r.max_image_size ? r.max_image_size : 1024;
  s.dumping = !r.dump_path.empty();
  const bool caching = options_.image_cache_entries > 0;
  s.image_key = caching ? image_key(r.image_bytes, min_size, max_size) : std::string();
  const std::string& key = s.image_key;

  // Image: decode, Pillow-exact resize, normalise (or the cached result for this image).
  const ImagePrefix* cached = nullptr;
  for (const ImagePrefix& e : image_cache_) {
    if (caching && e.key == key && e.image_bytes == r.image_bytes) cached = &e;
  }
  if (cached) {
    s.pixels = cached->pixels;
    s.image_width = cached->image_width;
    s.image_height = cached->image_height;
  } else {
    io::DecodeLimits limits;
    limits.max_pixels = options_.max_image_pixels;
    const io::DecodedImage decoded = io::decode_image(r.image_bytes, limits);
    io::PreprocessedImage pre = io::preprocess_image(decoded, min_size, max_size);
    s.pixels = pre.pixels;
    s.image_width = pre.orig_width;
    s.image_height = pre.orig_height;
  }
  s.result.image_width = s.image_width;
  s.result.image_height = s.image_height;

  // Prompt.
  const std::string text = prompt_for_task(r.task, r.query, image_token_);
  s.prompt = build_prompt(*tokenizer_, special_, text, s.pixels, model_->patch_dtype());
  const int64_t S = s.prompt.ids.dim(0);
  if (S >= config_.max_seq_len) {
    throw InvalidArgument("prompt of " + std::to_string(S) + " tokens does not fit the model's " +
                          std::to_string(config_.max_seq_len) + "-token context (use a smaller max_image_size)");
  }
  const int default_new = ocr ? 4096 : 1024;
  int max_new = r.sampling.max_new_tokens ? r.sampling.max_new_tokens : default_new;
  if (!r.sampling.forced_tokens.empty()) max_new = int(r.sampling.forced_tokens.size());
  max_new = int(std::min<int64_t>(max_new, config_.max_seq_len - S));
  s.max_new_tokens = max_new;
  s.result.input_tokens = int(S);
  s.rng.seed(r.sampling.seed);
  s.result.timings.preprocess_ms = ms_since(s.started);
}

void EngineImpl::start(Sequence& s) {
  const bool caching = options_.image_cache_entries > 0;
  const int64_t S = s.prompt.ids.dim(0);

  // Prefill: the image block comes from the cache when this image was seen (not when
  // dumping, which reports the hidden states of the whole prompt).
  const auto t_prefill = Clock::now();
  s.cache = model_->new_cache(pool_ ? S : S + s.max_new_tokens + 1);
  // The prefix is everything up to and including end_of_image: it does not depend on the query.
  const int64_t prefix_len = s.prompt.image_end + 1;
  ImagePrefix* prefix = caching && !s.dumping ? find_prefix(s.image_key, s.request.image_bytes, s.prompt) : nullptr;
  const int64_t start = prefix ? prefix_len : 0;
  if (prefix) s.cache.copy_prefix_from(prefix->cache, prefix_len);
  PrefillResult pre_out = model_->prefill(s.prompt, start, s.cache);
  s.result.timings.prefill_host_ms = ms_since(t_prefill);
  model_->wait();  // the prefill's time is its device time, not the time to queue it
  s.result.timings.prefill_ms = ms_since(t_prefill);
  after_prefill(s, pre_out, prefix, start);
}

bool EngineImpl::packable(const Sequence& s) {
  if (!pool_ || s.dumping) return false;
  const bool caching = options_.image_cache_entries > 0;
  return !(caching && find_prefix(s.image_key, s.request.image_bytes, s.prompt));
}

void EngineImpl::start_packed(const std::vector<Sequence*>& group) {
  // One forward pass over the stacked prompts; each sequence's cache is a view of its rows of
  // the packed cache (moved to the paged pool in after_prefill, which frees it).
  const auto t_prefill = Clock::now();
  int64_t rows = 0;
  std::vector<const PromptTensors*> prompts;
  for (const Sequence* s : group) {
    prompts.push_back(&s->prompt);
    rows += s->prompt.ids.dim(0);
  }
  KvCache packed = model_->new_cache(rows);
  std::vector<PrefillResult> out = model_->prefill_packed(prompts, packed);
  const double host_ms = ms_since(t_prefill);
  model_->wait();
  const double ms = ms_since(t_prefill);
  int64_t base = 0;
  for (size_t i = 0; i < group.size(); ++i) {
    Sequence& s = *group[i];
    const int64_t S = s.prompt.ids.dim(0);
    s.cache = KvCache::rows_of(packed, base, S);
    base += S;
    s.result.timings.prefill_ms = ms;
    s.result.timings.prefill_host_ms = host_ms;
    s.result.prefill_batch = int(group.size());
    after_prefill(s, out[i], nullptr, 0);
  }
}

void EngineImpl::after_prefill(Sequence& s, PrefillResult& pre_out, ImagePrefix* prefix, int64_t start) {
  const Request& r = s.request;
  const int max_size = r.max_image_size ? r.max_image_size : 1024;
  const bool caching = options_.image_cache_entries > 0;
  const std::string& key = s.image_key;
  const int64_t S = s.prompt.ids.dim(0);
  const int64_t prefix_len = s.prompt.image_end + 1;
  s.reused_prefix = prefix != nullptr;
  s.result.cached_tokens = int(start);
  s.last_hidden = pre_out.hidden.rows(S - start - 1, S - start);
  s.last_logits = pre_out.logits_last;
  s.last_pos_t = s.prompt.pos_t.data<int32_t>()[S - 1];

  const int64_t gh = s.pixels.dim(0) / 16, gw = s.pixels.dim(1) / 16;
  Tensor img_hidden;  // (gh * gw, D) F32 CPU, for segmentation
  if (prefix) {
    img_hidden = prefix->img_hidden;
  } else if (config_.do_segmentation) {
    const Tensor rows = pre_out.hidden.rows(s.prompt.patch_start, s.prompt.patch_start + gh * gw);
    img_hidden = seg_device_ == Device::CPU ? host_f32(rows) : rows;
  }
  if (caching && !prefix) {
    ImagePrefix e;
    e.key = key;
    e.image_bytes = r.image_bytes;
    e.pixels = s.pixels;
    e.image_width = s.image_width;
    e.image_height = s.image_height;
    e.ids.assign(s.prompt.ids.data<int32_t>(), s.prompt.ids.data<int32_t>() + prefix_len);
    e.cache = model_->new_cache(prefix_len);
    e.cache.copy_prefix_from(s.cache, prefix_len);
    e.img_hidden = img_hidden;
    remember_prefix(std::move(e));
    prefix = &image_cache_.front();
  }

  if (r.task == Task::Segmentation) {
    // conv_segm + AnyUp on the img-token hidden states, once per image and canvas.
    const auto t_seg = Clock::now();
    s.canvas = segmentation_canvas(max_size, 16);
    if (prefix && prefix->hr_features.defined() && prefix->canvas == s.canvas) {
      s.hr_features = prefix->hr_features;
      if (s.dumping) s.dump["lr_features_conv"] = to_host(prefix->lr_features);
    } else {
      const Tensor pixels = seg_device_ == Device::CPU ? s.pixels : s.pixels.to(seg_device_);
      SegmentationFeatures f =
          segmentation_features(*segmentation_, img_hidden, gh, gw, pixels, s.canvas, seg_precision_);
      s.hr_features = f.hr;
      if (s.dumping) s.dump["lr_features_conv"] = to_host(f.lr);
      if (prefix) {
        prefix->canvas = s.canvas;
        prefix->lr_features = f.lr;
        prefix->hr_features = f.hr;
      }
    }
    if (s.dumping) s.dump["hr_features"] = to_host(s.hr_features);
    s.result.timings.segmentation_ms += ms_since(t_seg);
  }

  if (pool_) {
    // The prompt's keys and values move to the paged pool; the contiguous cache goes.
    s.pool = pool_.get();
    pool_->reserve(s.blocks, S + 1);
    model_->write_to_pool(s.cache, S, s.blocks, *pool_);
    s.kv_length = S;
    s.cache = KvCache();
  }

  if (s.dumping) {
    s.dump["input_ids"] = to_i64(s.prompt.ids);
    s.dump["pos_t"] = to_i64(s.prompt.pos_t);
    s.dump["pos_hw"] = s.prompt.pos_hw;
    s.dump["pixel_values"] = s.pixels;
    s.dump["prefill_logits_last"] = host_f32(pre_out.logits_last).reshape({config_.vocab_size});
    s.dump["prefill_hidden"] = host_f32(pre_out.hidden);
  }
}

bool EngineImpl::choose_next(Sequence& s, DecodeRow& row) {
  const int64_t V = config_.vocab_size;
  const SamplingOptions& so = s.request.sampling;
  const size_t step = s.tokens.size();
  if (int(step) >= s.max_new_tokens) return false;

  int32_t token;
  if (!so.forced_tokens.empty()) {
    token = so.forced_tokens[step];
  } else if (so.temperature <= 0.f && s.last_argmax >= 0) {
    token = s.last_argmax;  // greedy: the device's argmax, no logits copy
  } else {
    Tensor logits = host_f32(s.last_logits);
    token = sample_token(logits.data<float>(), V, so.temperature, so.top_k, s.rng);
  }
  s.tokens.push_back(token);
  if (s.request.on_text && token < tokenizer_->vocab_size() &&
      std::find(stop_tokens_.begin(), stop_tokens_.end(), token) == stop_tokens_.end()) {
    // Text comes out only once it is complete UTF-8, spaced as the full decode spaces it.
    if (!s.stream) s.stream = std::make_unique<TokenStreamDecoder>(*tokenizer_);
    if (std::optional<std::string> piece = s.stream->step(token); piece && !piece->empty()) s.request.on_text(*piece);
  }

  // Head rules: the hidden state that chose the token decides its value.
  std::array<float, 2> xy{0, 0}, hw{0, 0};
  if (config_.perception_heads && token == special_.coord) {
    Tensor lg = model_->coord_logits(s.last_hidden);
    xy = decode_coord(lg.data<float>(), int(lg.dim(1)), s.coord_history, so.coord_dedup_threshold);
    s.coord_history.push_back(xy);
    s.open_xy = xy;
  } else if (config_.perception_heads && token == special_.size) {
    Tensor lg = model_->size_logits(s.last_hidden);
    hw = decode_size(lg.data<float>(), int(lg.dim(1)));
    if (s.open_xy) {
      Detection d;
      d.x = (*s.open_xy)[0];
      d.y = (*s.open_xy)[1];
      d.h = hw[0];
      d.w = hw[1];
      d.bbox = pixel_box(d.x, d.y, d.h, d.w, s.image_width, s.image_height);
      s.detections.push_back(d);
      s.open_xy.reset();
    }
  }
  if (token == special_.seg && s.request.task == Task::Segmentation) {
    // The mask embedding of the object the seg token closes (the last box so far).
    s.segm_embeds.push_back(host_f32(segmentation_embeddings(
        *segmentation_, seg_device_ == Device::CPU ? host_f32(s.last_hidden) : s.last_hidden)));
    s.seg_detection.push_back(int(s.detections.size()) - 1);
  }
  if (s.dumping) {
    s.step_xy.push_back(xy);
    s.step_hw.push_back(hw);
  }

  const bool stop = !so.ignore_stop && std::find(stop_tokens_.begin(), stop_tokens_.end(), token) != stop_tokens_.end();
  const bool last = stop || int(s.tokens.size()) >= s.max_new_tokens;
  if (last && !s.dumping) return false;
  s.finish_after_feed = last;

  row = DecodeRow{};
  row.token = token;
  row.pos_t = ++s.last_pos_t;
  if (token == special_.coord && config_.perception_heads) row.coord_xy = xy;
  if (token == special_.size && config_.perception_heads) row.size_hw = hw;
  row.cache = &s.cache;
  row.image_begin = s.prompt.image_begin;
  row.image_end = s.prompt.image_end;
  return true;
}

void EngineImpl::record_step(Sequence& s, const Tensor& hidden_row, const Tensor& logits_row) {
  s.last_hidden = hidden_row;
  s.last_logits = logits_row;
  if (s.dumping) {
    s.step_hidden.push_back(host_f32(hidden_row));
    s.step_logits.push_back(host_f32(logits_row));
  }
}

void EngineImpl::finish(Sequence& s) {
  Result& res = s.result;
  if (s.stream) {
    const std::string rest = s.stream->finish();
    if (!rest.empty()) s.request.on_text(rest);
  }
  res.tokens = s.tokens;
  res.output_tokens = int(s.tokens.size());
  res.detections = s.detections;
  if (s.request.task == Task::OcrPlain) {
    std::vector<int32_t> text_ids;
    for (int32_t t : s.tokens) {
      if (std::find(stop_tokens_.begin(), stop_tokens_.end(), t) == stop_tokens_.end()) text_ids.push_back(t);
    }
    std::string text = decode_text(text_ids);
    const auto b = text.find_first_not_of(" \t\n\r\f\v");
    const auto e = text.find_last_not_of(" \t\n\r\f\v");
    res.text = b == std::string::npos ? std::string() : text.substr(b, e - b + 1);
  } else {
    res.text = decode_text(s.tokens);
  }
  if (!s.segm_embeds.empty()) finish_masks(s);
  if (s.dumping) write_dump(s);
  res.timings.total_ms = ms_since(s.submitted);
}

void EngineImpl::finish_masks(Sequence& s) {
  const auto t0 = Clock::now();
  const int64_t K = int64_t(s.segm_embeds.size()), S = s.segm_embeds[0].dim(1);
  Tensor embeds = Tensor::empty({K, S}, DType::F32);  // (K, S)
  for (int64_t k = 0; k < K; ++k) {
    std::memcpy(embeds.data<float>() + k * S, s.segm_embeds[size_t(k)].data<float>(), size_t(S) * sizeof(float));
  }
  const Tensor logits =
      mask_logits(s.hr_features, seg_device_ == Device::CPU ? embeds : embeds.to(seg_device_),
                  seg_precision_);  // (K, 8 gh, 8 gw)
  const Tensor masks = binary_masks(logits, s.image_height, s.image_width, 0.3f);       // (K, H0, W0) U8
  const int64_t plane = int64_t(s.image_height) * s.image_width;
  for (int64_t k = 0; k < K; ++k) {
    const int det = s.seg_detection[size_t(k)];
    if (det < 0 || det >= int(s.result.detections.size())) continue;  // a seg token before any box
    const uint8_t* m = masks.data<uint8_t>() + k * plane;
    Mask mask;
    mask.height = s.image_height;
    mask.width = s.image_width;
    mask.rle_counts = io::encode_coco_rle(m, s.image_height, s.image_width);
    for (int64_t i = 0; i < plane; ++i) mask.area += m[i] != 0;
    if (s.request.keep_mask_pixels) mask.pixels.assign(m, m + plane);
    s.result.detections[size_t(det)].mask = std::move(mask);
  }
  if (s.dumping) {
    s.dump["segm_embeds"] = embeds;
    s.dump["mask_logits"] = to_host(logits);
    s.dump["masks"] = masks;
  }
  s.result.timings.segmentation_ms += ms_since(t0);
}

std::string EngineImpl::decode_text(const std::vector<int32_t>& ids) const {
  std::vector<int32_t> known;
  known.reserve(ids.size());
  for (int32_t id : ids) {
    if (id >= 0 && id < tokenizer_->vocab_size()) known.push_back(id);
  }
  return tokenizer_->decode(known, /*skip_special_tokens=*/false);
}

void EngineImpl::write_dump(Sequence& s) {
  s.dump["step_logits"] = stack_rows(s.step_logits, config_.vocab_size);
  s.dump["step_hidden"] = stack_rows(s.step_hidden, config_.dim);
  s.dump["step_xy"] = pairs_tensor(s.step_xy);
  s.dump["step_hw"] = pairs_tensor(s.step_hw);
  write_safetensors(s.request.dump_path, s.dump, {{"producer", "falcon"}});
}

bool EngineImpl::step() {
  // Admit queued requests: their images are decoded and their prompts built in parallel on
  // the CPU (the device would idle through that work one request at a time); each is then
  // prefilled alone and joins the decode batch.
  std::vector<std::unique_ptr<Sequence>> admitted;
  while (!waiting_.empty() && int(active_.size() + admitted.size()) < std::max(1, options_.max_batch)) {
    admitted.push_back(std::move(waiting_.front()));
    waiting_.pop_front();
  }
  std::vector<std::exception_ptr> errors(admitted.size());
  std::optional<ops::OpProfileScope> admit;
  if (!admitted.empty()) admit.emplace("engine step: decode images, build prompts (host)", false);
  parallel_for(int64_t(admitted.size()), 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      try {
        prepare(*admitted[size_t(i)]);
      } catch (...) {
        errors[size_t(i)] = std::current_exception();
      }
    }
  });
  if (!admitted.empty()) admit.emplace("engine step: prefill and start (host)", false);
  // Prompts that start from scratch are prefilled together, up to kPackedPrefillRows rows
  // per forward pass (bigger products, fewer launches); the rest one at a time.
  std::vector<Sequence*> group;
  int64_t group_rows = 0;
  auto flush = [&] {
    if (group.empty()) return;
    try {
      start_packed(group);
      for (Sequence* g : group) g->started_ok = true;
    } catch (...) {
      const std::exception_ptr e = std::current_exception();
      for (Sequence* g : group) g->start_error = e;
    }
    group.clear();
    group_rows = 0;
  };
  for (size_t i = 0; i < admitted.size(); ++i) {
    Sequence& s = *admitted[i];
    if (errors[i]) continue;
    const int64_t S = s.prompt.ids.dim(0);
    if (!packable(s)) continue;
    if (group_rows + S > kPackedPrefillRows) flush();
    group.push_back(&s);
    group_rows += S;
  }
  flush();
  for (size_t i = 0; i < admitted.size(); ++i) {
    std::unique_ptr<Sequence>& s = admitted[i];
    try {
      if (errors[i]) std::rethrow_exception(errors[i]);
      if (s->start_error) std::rethrow_exception(s->start_error);
      if (!s->started_ok) start(*s);
      active_.push_back(std::move(s));
    } catch (...) {
      if (s->done) s->done(s->id, nullptr, std::current_exception());
    }
  }
  admit.reset();
  if (active_.empty()) return false;

  // Choose each sequence's next token; finished ones leave the batch.
  std::optional<ops::OpProfileScope> phase(std::in_place, "engine step: choose tokens (host)", false);
  std::vector<DecodeRow> rows;
  std::vector<Sequence*> batch;
  const auto t_decode = Clock::now();
  for (auto it = active_.begin(); it != active_.end();) {
    Sequence& s = **it;
    DecodeRow row;
    bool continues = false;
    std::exception_ptr error;
    try {
      continues = choose_next(s, row);
      if (!continues) finish(s);
    } catch (...) {
      error = std::current_exception();
    }
    if (continues) {
      rows.push_back(row);
      batch.push_back(&s);
      ++it;
      continue;
    }
    if (s.done) s.done(s.id, error ? nullptr : &s.result, error);
    it = active_.erase(it);
  }
  if (rows.empty()) return !waiting_.empty();

  phase.reset();
  Tensor hidden, logits;
  std::vector<int32_t> argmax;
  try {
    if (pool_) {
      std::vector<PagedRow> paged(rows.size());
      for (size_t b = 0; b < rows.size(); ++b) {
        Sequence& s = *batch[b];
        pool_->reserve(s.blocks, s.kv_length + 1);
        PagedRow& p = paged[b];
        p.token = rows[b].token;
        p.pos_t = rows[b].pos_t;
        p.coord_xy = rows[b].coord_xy;
        p.size_hw = rows[b].size_hw;
        p.blocks = &s.blocks;
        p.length = s.kv_length;
      }
      DecodeOutput out;
      model_->decode_paged(paged, *pool_, out);
      for (Sequence* s : batch) ++s->kv_length;
      hidden = out.hidden;
      logits = out.logits;
      argmax = std::move(out.argmax);
    } else {
      model_->decode(rows, hidden, logits);
    }
  } catch (...) {
    // A failed step fails every request in it; the engine stays usable.
    const std::exception_ptr error = std::current_exception();
    for (Sequence* s : batch) {
      if (s->done) s->done(s->id, nullptr, error);
      active_.remove_if([&](const std::unique_ptr<Sequence>& p) { return p.get() == s; });
    }
    return !active_.empty() || !waiting_.empty();
  }
  const double step_ms = ms_since(t_decode);
  phase.emplace("engine step: record (host)", false);
  for (size_t b = 0; b < batch.size(); ++b) {
    Sequence& s = *batch[b];
    s.result.timings.decode_ms += step_ms;
    record_step(s, hidden.rows(int64_t(b), int64_t(b) + 1), logits.rows(int64_t(b), int64_t(b) + 1));
    s.last_argmax = argmax.empty() ? -1 : argmax[b];
  }
  // Sequences whose stop token was fed only for the record finish now.
  for (auto it = active_.begin(); it != active_.end();) {
    Sequence& s = **it;
    if (!s.finish_after_feed) {
      ++it;
      continue;
    }
    std::exception_ptr error;
    try {
      finish(s);
    } catch (...) {
      error = std::current_exception();
    }
    if (s.done) s.done(s.id, error ? nullptr : &s.result, error);
    it = active_.erase(it);
  }
  return !active_.empty() || !waiting_.empty();
}

Result EngineImpl::run(const Request& request) {
  Result out;
  std::exception_ptr error;
  bool finished = false;
  const RequestId id = submit(request, [&](RequestId, Result* r, const std::exception_ptr& e) {
    if (r) out = std::move(*r);
    error = e;
    finished = true;
  });
  while (!finished && step()) {
  }
  if (!finished) {
    cancel(id);
    throw InternalError("request ended without a result");
  }
  if (error) std::rethrow_exception(error);
  return out;
}

}  // namespace falcon
