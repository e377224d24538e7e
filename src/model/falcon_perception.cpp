// The forward pass. Reads like MODEL.md "Transformer": pre-norm blocks with weightless
// RMSNorm, fused QKV, per-head QK norm, 3-D RoPE, attention with learned sinks,
// squared-ReLU gated FFN; final norm with weight; logits.
// Shapes: S prompt rows, B decode rows, D model dim, H heads, K kv heads, hd head dim,
// F ffn dim, V vocab.
#include "model/falcon_perception.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>

#include "core/error.h"
#include "ops/activation.h"
#include "ops/argmax.h"
#include "ops/attention.h"
#include "ops/convert.h"
#include "ops/cuda_context.h"
#include "ops/cuda_graph.h"
#include "ops/decode_layers.h"
#include "ops/feed_forward.h"
#include "ops/paged_attention.h"
#include "ops/paged_attention_qkv.h"
#include "ops/embedding.h"
#include "ops/linear.h"
#include "ops/op_profile.h"
#include "ops/qk_norm_rope.h"
#include "ops/rms_norm.h"

namespace falcon {

FalconPerceptionModel::FalconPerceptionModel(ModelConfig config, ModelWeights weights, Device device,
                                             DType activation_dtype)
    : config_(std::move(config)),
      weights_(std::move(weights)),
      device_(device),
      act_(activation_dtype),
      // MODEL.md: the blocks' RMSNorm uses FLT_EPSILON (torch's default for f32). The norms
      // compute in f32 whatever the storage dtype, so bf16 activations keep that eps too
      // (bf16's own machine epsilon, 2^-7, would swamp small head vectors).
      block_norm_eps_(FLT_EPSILON) {}

// The buffers of one batched decode step, kept for replays. B is the bucket (rows past the
// batch are padding: length 0, no keys), MB the block-table width.
struct DecodeGraph {
  int64_t B = 0, MB = 0;
  std::vector<int32_t> host_in;  // ids [B], pos_t [B], seq_lens [B], table [B, MB]
  Tensor in, ids, pos_t, seq_lens, table;
  Tensor pos_hw;  // [B, 2] zeros: text rows have the identity 2-D rotation
  Tensor x, n, qkv, o, a, g, hidden, logits, argmax;
  std::vector<int32_t> host_argmax;
  std::vector<ops::DecodeLayer> layers;  // the pool's tensors: valid while the pool does not move
  int runs = 0;  // eager runs so far (the first one grows the ops' scratch before a capture)
  ops::cuda::Graph embed_graph, layers_graph;
};

FalconPerceptionModel::~FalconPerceptionModel() = default;

// The attention block's input norm as a linear() prologue (fused into the product where a
// kernel can; otherwise materialised in `scratch`).
ops::LinearPrologue FalconPerceptionModel::norm_first(Tensor& scratch) const {
  return {ops::LinearPrologue::Kind::RmsNorm, block_norm_eps_, &scratch};
}

KvPool FalconPerceptionModel::new_pool(int64_t tokens) const {
  const int block = 16;
  return KvPool(config_.n_layers, std::max<int64_t>(1, (tokens + block - 1) / block), block, config_.n_heads,
                config_.n_kv_heads, config_.head_dim, act_, device_);
}

void FalconPerceptionModel::write_to_pool(KvCache& cache, int64_t n, const std::vector<int32_t>& blocks,
                                          KvPool& pool) const {
  const int64_t bs = pool.block_size();
  if (int64_t(blocks.size()) * bs < n) throw InternalError("write_to_pool: too few blocks");
  Tensor slots = Tensor::empty({n}, DType::I32);
  for (int64_t t = 0; t < n; ++t) slots.data<int32_t>()[t] = int32_t(blocks[size_t(t / bs)] * bs + t % bs);
  const Tensor dslots = slots.to(device_);
  for (int l = 0; l < config_.n_layers; ++l) {
    ops::paged_kv_write(cache.keys(l).rows(0, n), cache.values(l).rows(0, n), dslots, pool.keys(l),
                        pool.values(l));
  }
}

void FalconPerceptionModel::run_decode_layers(DecodeGraph& g, KvPool& pool) const {
  const ModelConfig& c = config_;
  // Every block: x += wo . attn(rope(norm(q)), rope(norm(k)), v), then
  // x += w2 . (relu(gate)^2 * up) with (gate, up) = w13 . norm(x); the step's key and value go
  // into the pool at each row's newest position (ops/decode_layers.h: one kernel on CUDA at one
  // row, else op by op).
  if (g.layers.empty()) {
    for (int l = 0; l < c.n_layers; ++l) {
      const LayerWeights& w = weights_.layers[size_t(l)];
      g.layers.push_back({&w.wqkv, &w.wo, &w.w13, &w.w2, &w.sinks, &pool.keys(l), &pool.values(l)});
    }
  }
  ops::decode_layers(g.x, g.layers, g.pos_t, g.pos_hw, weights_.golden, c.rope_theta, block_norm_eps_, g.table,
                     g.seq_lens, {&g.n, &g.qkv, &g.o, &g.a, &g.g});
  ops::rms_norm(g.x, &weights_.norm, c.norm_eps, g.hidden);
  ops::linear(g.hidden, weights_.output, nullptr, g.logits);
  ops::argmax(g.logits, g.argmax);
}

void FalconPerceptionModel::decode_paged(const std::vector<PagedRow>& rows, KvPool& pool, DecodeOutput& out) const {
  const ModelConfig& c = config_;
  const int64_t n_rows = int64_t(rows.size());
  if (n_rows == 0) throw InternalError("decode: empty batch");
  const int64_t bs = pool.block_size();
  int64_t need_blocks = 1;
  for (const PagedRow& r : rows) {
    if (!r.blocks || int64_t(r.blocks->size()) * bs < r.length + 1) throw InternalError("decode: no block for the step");
    if (r.length + 1 > c.max_seq_len) throw InvalidArgument("decode: sequence longer than the model's context");
    need_blocks = std::max(need_blocks, int64_t(r.blocks->size()));
  }
  // Buckets: batch rounded up to a power of two, table width to a power of two >= 16.
  int64_t B = 1, MB = 16;
  while (B < n_rows) B *= 2;
  while (MB < need_blocks) MB *= 2;
  if (pool.generation() != graphs_generation_) {  // the pool moved: captured addresses are stale
    graphs_.clear();
    graphs_generation_ = pool.generation();
  }
  std::unique_ptr<DecodeGraph>& slot = graphs_[{B, MB}];
  if (!slot) {
    auto g = std::make_unique<DecodeGraph>();
    const int64_t D = c.dim, H = c.n_heads, hd = c.head_dim;
    g->B = B;
    g->MB = MB;
    g->host_in.assign(size_t(3 * B + B * MB), 0);
    g->in = Tensor::zeros({3 * B + B * MB}, DType::I32, device_);
    g->ids = g->in.rows(0, B);
    g->pos_t = g->in.rows(B, 2 * B);
    g->seq_lens = g->in.rows(2 * B, 3 * B);
    g->table = g->in.rows(3 * B, 3 * B + B * MB).reshape({B, MB});
    g->pos_hw = Tensor::zeros({B, 2}, DType::F32, device_);
    g->x = act({B, D});
    g->n = act({B, D});
    g->qkv = act({B, int64_t(c.qkv_dim())});
    g->o = act({B, H, hd});
    g->a = act({B, 2 * int64_t(c.ffn_dim)});
    g->g = act({B, int64_t(c.ffn_dim)});
    g->hidden = act({B, D});
    g->logits = act({B, int64_t(c.vocab_size)});
    g->argmax = Tensor::zeros({B}, DType::I32, device_);
    g->host_argmax.assign(size_t(B), 0);
    slot = std::move(g);
  }
  DecodeGraph& g = *slot;

  // Inputs: ids, positions, lengths after the step (the step's key goes to position length),
  // block tables.
  std::optional<ops::OpProfileScope> phase(std::in_place, "decode_step: inputs (host)", false);
  int32_t* in = g.host_in.data();
  std::fill(in, in + 3 * B, 0);
  std::fill(in + 3 * B, in + 3 * B + B * MB, -1);
  for (int64_t b = 0; b < n_rows; ++b) {
    const PagedRow& r = rows[size_t(b)];
    in[b] = r.token;
    in[B + b] = r.pos_t;
    in[2 * B + b] = int32_t(r.length + 1);
    std::copy(r.blocks->begin(), r.blocks->end(), in + 3 * B + b * MB);
  }
  const bool cuda = device_ == Device::CUDA;
  if (cuda) {
    ops::cuda::upload_async(g.in.raw(), in, g.host_in.size() * sizeof(int32_t));
  } else {
    std::memcpy(g.in.raw(), in, g.host_in.size() * sizeof(int32_t));
  }

  static const bool graphs_env = [] {
    const char* e = std::getenv("FALCON_CUDA_GRAPHS");
    return !(e && std::string(e) == "0");
  }();
  const bool replay = cuda && use_graphs_ && graphs_env && ops::cuda::graphs_available() && g.runs > 0;
  phase.emplace("decode_step: embedding, coord/size rows (host)", false);
  // Embeddings; coord/size tokens carry their encoded value instead (written between the
  // embedding and the layers, outside the graph).
  auto embed = [&] { ops::embedding(weights_.tok_embeddings, g.ids, g.x); };
  if (replay && !g.embed_graph.ready()) {
    try {
      g.embed_graph.capture(embed);
    } catch (const Error&) {
      use_graphs_ = false;
    }
  }
  if (replay && use_graphs_) {
    g.embed_graph.launch();
  } else {
    embed();
  }
  for (int64_t b = 0; b < n_rows; ++b) {
    const PagedRow& r = rows[size_t(b)];
    if (!r.coord_xy && !r.size_hw) continue;
    Tensor xb = g.x.rows(b, b + 1);
    if (r.coord_xy) xb.copy_from(encode_coord(*r.coord_xy));
    if (r.size_hw) xb.copy_from(encode_size(*r.size_hw));
  }
  phase.emplace("decode_step: layers (host: launch or eager ops)", false);
  if (replay && use_graphs_ && !g.layers_graph.ready()) {
    try {
      g.layers_graph.capture([&] { run_decode_layers(g, pool); });
    } catch (const Error&) {
      use_graphs_ = false;  // eager from now on (the capture left no trace)
    }
  }
  if (replay && use_graphs_ && g.layers_graph.ready()) {
    g.layers_graph.launch();
  } else {
    run_decode_layers(g, pool);
  }
  ++g.runs;

  phase.emplace("decode_step: wait for the argmax (host)", false);
  if (cuda) {
    ops::cuda::download(g.host_argmax.data(), g.argmax.raw(), size_t(B) * sizeof(int32_t));
  } else {
    std::memcpy(g.host_argmax.data(), g.argmax.raw(), size_t(B) * sizeof(int32_t));
  }
  phase.reset();
  out.hidden = g.hidden.rows(0, n_rows);
  out.logits = g.logits.rows(0, n_rows);
  out.argmax.assign(g.host_argmax.begin(), g.host_argmax.begin() + n_rows);
}

void FalconPerceptionModel::wait() const {
  if (device_ == Device::CUDA) ops::cuda::synchronize();
}

KvCache FalconPerceptionModel::new_cache(int64_t capacity) const {
  return KvCache(config_.n_layers, capacity, config_.n_heads, config_.n_kv_heads, config_.head_dim, act_, device_);
}

Tensor FalconPerceptionModel::stacked_to_device(const std::vector<const Tensor*>& parts) const {
  int64_t rows = 0;
  for (const Tensor* t : parts) rows += t->dim(0);
  Shape shape = parts.front()->shape();
  shape[0] = rows;
  if (device_ == Device::CUDA && act_ == DType::BF16) {
    // Rounded to bf16 on the host (the device convert's round-to-nearest-even; already done
    // where the prompt was built with patch_dtype()) straight into page-locked memory: half the
    // bytes of f32 (the 1024x768 image's patches are 9.4 MB in f32), and one asynchronous DMA.
    if (!patch_upload_) patch_upload_ = std::make_unique<ops::cuda::PinnedUpload>();
    const size_t bytes = size_t(shape_numel(shape)) * sizeof(uint16_t);
    auto* host = static_cast<uint16_t*>(patch_upload_->reserve(bytes));
    int64_t r = 0;
    for (const Tensor* t : parts) {
      Shape sh = t->shape();
      Tensor dst = Tensor::wrap(host + r * (t->numel() / t->dim(0)), sh, DType::BF16, Device::CPU, nullptr);
      ops::convert(*t, dst);
      r += t->dim(0);
    }
    Tensor out = act(shape);
    patch_upload_->upload(out.raw(), bytes);
    return out;
  }
  if (parts.size() == 1 && parts.front()->dtype() == DType::F32) return to_device_activation(*parts.front());
  Tensor host = Tensor::empty(shape, DType::F32);
  int64_t r = 0;
  for (const Tensor* t : parts) {
    Tensor dst = host.rows(r, r + t->dim(0));
    ops::convert(*t, dst);
    r += t->dim(0);
  }
  return to_device_activation(host);
}

Tensor FalconPerceptionModel::input_to_device(const Tensor& host) const {
  if (device_ == Device::CPU) return host;
  Tensor out = Tensor::empty(host.shape(), host.dtype(), device_);
  ops::cuda::upload_async(out.raw(), host.raw(), host.nbytes());  // staged: `host` may go at once
  return out;
}

Tensor FalconPerceptionModel::to_device_activation(const Tensor& host_f32) const {
  if (device_ == Device::CPU && act_ == DType::F32) return host_f32;
  if (device_ == Device::CUDA && act_ == DType::BF16) return stacked_to_device({&host_f32});
  Tensor f32 = host_f32.to(device_);
  if (act_ == DType::F32) return f32;
  Tensor out = act(f32.shape());
  ops::convert(f32, out);
  return out;
}

PrefillResult FalconPerceptionModel::prefill(const PromptTensors& p, int64_t start, KvCache& cache) const {
  const int64_t total = p.ids.dim(0);
  if (total - start <= 0 || start != cache.length()) {
    throw InternalError("prefill: start " + std::to_string(start) + " with a cache of " +
                        std::to_string(cache.length()) + " tokens and a prompt of " + std::to_string(total));
  }
  if (total > cache.capacity()) throw InvalidArgument("prefill: prompt longer than the KV cache");
  return std::move(run_prefill({{&p, start, 0}}, cache).front());
}

std::vector<PrefillResult> FalconPerceptionModel::prefill_packed(const std::vector<const PromptTensors*>& prompts,
                                                                 KvCache& cache) const {
  std::vector<PrefillSegment> segs;
  int64_t base = 0;
  for (const PromptTensors* p : prompts) {
    segs.push_back({p, 0, base});
    base += p->ids.dim(0);
  }
  if (segs.empty() || cache.length() != 0 || base > cache.capacity()) {
    throw InternalError("prefill_packed: " + std::to_string(base) + " prompt rows for a cache of " +
                        std::to_string(cache.capacity()) + " (length " + std::to_string(cache.length()) + ")");
  }
  return run_prefill(segs, cache);
}

namespace {
// Rows [begin, end) of each host tensor, stacked (dim 0) into one host tensor (one part: a view).
Tensor stack_rows(const std::vector<std::pair<const Tensor*, std::pair<int64_t, int64_t>>>& parts) {
  if (parts.size() == 1) return parts.front().first->rows(parts.front().second.first, parts.front().second.second);
  int64_t n = 0;
  for (const auto& [t, r] : parts) n += r.second - r.first;
  Shape shape = parts.front().first->shape();
  shape[0] = n;
  Tensor out = Tensor::empty(shape, parts.front().first->dtype());
  int64_t row = 0;
  for (const auto& [t, r] : parts) {
    Tensor dst = out.rows(row, row + (r.second - r.first));
    dst.copy_from(t->rows(r.first, r.second));
    row += r.second - r.first;
  }
  return out;
}
}  // namespace

std::vector<PrefillResult> FalconPerceptionModel::run_prefill(const std::vector<PrefillSegment>& segs,
                                                              KvCache& cache) const {
  const ModelConfig& c = config_;
  const int64_t D = c.dim, H = c.n_heads, hd = c.head_dim, F = c.ffn_dim, V = c.vocab_size;
  // Segment i runs prompt rows [start_i, total_i): rows [row_i, row_i + n_i) of the activations,
  // cache rows [base_i + start_i, base_i + total_i); it attends to cache rows [base_i, base_i + total_i).
  std::vector<int64_t> row(segs.size());
  int64_t S = 0;
  for (size_t i = 0; i < segs.size(); ++i) {
    const PrefillSegment& g = segs[i];
    if (i > 0 && g.base + g.start != segs[i - 1].base + segs[i - 1].p->ids.dim(0)) {
      throw InternalError("prefill: the segments' new rows must follow each other in the cache");
    }
    row[i] = S;
    S += g.p->ids.dim(0) - g.start;
  }
  const int64_t c0 = segs.front().base + segs.front().start;  // first new cache row
  std::vector<std::pair<const Tensor*, std::pair<int64_t, int64_t>>> ids_parts, pt_parts, phw_parts;
  for (const PrefillSegment& g : segs) {
    const std::pair<int64_t, int64_t> r{g.start, g.p->ids.dim(0)};
    ids_parts.push_back({&g.p->ids, r});
    pt_parts.push_back({&g.p->pos_t, r});
    phw_parts.push_back({&g.p->pos_hw, r});
  }

  // Ids and positions go up without waiting for the device (the ids are checked on the host).
  const Tensor ids_h = stack_rows(ids_parts), pos_t_h = stack_rows(pt_parts), pos_hw_h = stack_rows(phw_parts);
  const Tensor ids = input_to_device(ids_h);        // (S) I32
  const Tensor pos_t = input_to_device(pos_t_h);    // (S) I32
  const Tensor pos_hw = input_to_device(pos_hw_h);  // (S, 2) F32

  // Embeddings: tokens, with the img tokens replaced by the projected patches (every prompt's
  // patches in one upload and one product), unless a reused prefix already holds them.
  Tensor x = act({S, D});  // (S, D)
  ops::embedding(weights_.tok_embeddings, ids, x, &ids_h);
  std::vector<const Tensor*> patch_parts;
  std::vector<int64_t> patch_row;  // first activation row of each part's patches
  for (size_t i = 0; i < segs.size(); ++i) {
    const PromptTensors& p = *segs[i].p;
    const int64_t start = segs[i].start, total = p.ids.dim(0);
    if (!p.patches.defined() || p.patches.dim(0) == 0 || p.patch_start + p.patches.dim(0) <= start) continue;
    if (p.patch_start < start || p.patch_start + p.patches.dim(0) > total) {
      throw InternalError("prefill: the image block must lie inside the rows run");
    }
    patch_parts.push_back(&p.patches);
    patch_row.push_back(row[i] + p.patch_start - start);
  }
  if (!patch_parts.empty()) {
    const Tensor patches = stacked_to_device(patch_parts);  // (sum P, 3 * 16 * 16)
    Tensor proj = act({patches.dim(0), D});                  // (sum P, D)
    ops::linear(patches, weights_.img_projector, nullptr, proj);
    int64_t r = 0;
    for (size_t j = 0; j < patch_parts.size(); ++j) {
      const int64_t P = patch_parts[j]->dim(0);
      Tensor dst = x.rows(patch_row[j], patch_row[j] + P);
      dst.copy_from(proj.rows(r, r + P));
      r += P;
    }
  }

  Tensor n = act({S, D});  // normalised input of each sub-block
  Tensor qkv = act({S, int64_t(c.qkv_dim())});
  Tensor q = act({S, H, hd});
  Tensor o = act({S, H, hd});
  Tensor a = act({S, 2 * F});
  Tensor g = act({S, F});
  for (int l = 0; l < c.n_layers; ++l) {
    const LayerWeights& w = weights_.layers[size_t(l)];
    // Attention: x += wo . attn(rope(norm(q)), rope(norm(k)), v)
    ops::linear(x, w.wqkv, nullptr, qkv, false, norm_first(n));  // (S, (H + 2K) hd)
    Tensor k_new = cache.keys(l).rows(c0, c0 + S);    // (S, H, hd) in the cache
    Tensor v_new = cache.values(l).rows(c0, c0 + S);  // (S, K, hd) in the cache
    ops::qk_norm_rope(qkv, pos_t, pos_hw, weights_.golden, c.rope_theta, block_norm_eps_, q, k_new, v_new);
    for (size_t i = 0; i < segs.size(); ++i) {  // each prompt over its own keys
      const PrefillSegment& sg = segs[i];
      const int64_t total = sg.p->ids.dim(0), ni = total - sg.start;
      const ops::AttentionMask mask{sg.start, sg.p->image_begin, sg.p->image_end};
      Tensor oi = o.rows(row[i], row[i] + ni);
      ops::attention(q.rows(row[i], row[i] + ni), cache.keys(l).rows(sg.base, sg.base + total),
                     cache.values(l).rows(sg.base, sg.base + total), w.sinks, mask, oi);
    }
    ops::linear(o.reshape({S, H * hd}), w.wo, nullptr, x, /*accumulate=*/true);
    // FFN: x += w2 . (relu(gate)^2 * up), (gate, up) = w13 . norm(x); a: (S, 2F), g: (S, F)
    ops::feed_forward(x, w.w13, w.w2, block_norm_eps_, {&n, &a, &g});  // (S, D)
  }
  cache.set_length(c0 + S);

  Tensor hidden = act({S, D});
  ops::rms_norm(x, &weights_.norm, c.norm_eps, hidden);
  std::vector<PrefillResult> out(segs.size());
  for (size_t i = 0; i < segs.size(); ++i) {
    const int64_t ni = segs[i].p->ids.dim(0) - segs[i].start;
    out[i].hidden = hidden.rows(row[i], row[i] + ni);
    out[i].logits_last = act({1, V});
    ops::linear(hidden.rows(row[i] + ni - 1, row[i] + ni), weights_.output, nullptr, out[i].logits_last);
  }
  return out;
}

void FalconPerceptionModel::decode(const std::vector<DecodeRow>& rows, Tensor& hidden, Tensor& logits) const {
  const ModelConfig& c = config_;
  const int64_t B = int64_t(rows.size());
  const int64_t D = c.dim, H = c.n_heads, hd = c.head_dim, F = c.ffn_dim, V = c.vocab_size;
  if (B == 0) throw InternalError("decode: empty batch");

  // Embeddings (B, D); coord/size tokens carry their encoded value instead.
  Tensor ids = Tensor::empty({B}, DType::I32);
  for (int64_t b = 0; b < B; ++b) {
    const DecodeRow& r = rows[size_t(b)];
    if (!r.cache || r.cache->length() >= r.cache->capacity()) throw InvalidArgument("decode: KV cache is full");
    ids.data<int32_t>()[b] = r.token;
  }
  Tensor x = act({B, D});
  ops::embedding(weights_.tok_embeddings, ids.to(device_), x);
  std::vector<Tensor> pos_t(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    const DecodeRow& r = rows[size_t(b)];
    Tensor xb = x.rows(b, b + 1);
    if (r.coord_xy) xb.copy_from(encode_coord(*r.coord_xy));
    if (r.size_hw) xb.copy_from(encode_size(*r.size_hw));
    Tensor pt = Tensor::empty({1}, DType::I32);
    pt.data<int32_t>()[0] = r.pos_t;
    pos_t[size_t(b)] = pt.to(device_);
  }
  const Tensor no_spatial = Tensor::zeros({1, 2}, DType::F32, device_);  // text: identity 2-D rotation

  Tensor n = act({B, D});
  Tensor qkv = act({B, int64_t(c.qkv_dim())});
  Tensor q = act({B, H, hd});
  Tensor o = act({B, H, hd});
  Tensor a = act({B, 2 * F});
  Tensor g = act({B, F});
  for (int l = 0; l < c.n_layers; ++l) {
    const LayerWeights& w = weights_.layers[size_t(l)];
    ops::linear(x, w.wqkv, nullptr, qkv, false, norm_first(n));  // (B, (H + 2K) hd)
    for (int64_t b = 0; b < B; ++b) {
      const DecodeRow& r = rows[size_t(b)];
      const int64_t T = r.cache->length();  // tokens before this step
      Tensor k_new = r.cache->keys(l).rows(T, T + 1);
      Tensor v_new = r.cache->values(l).rows(T, T + 1);
      Tensor qb = q.rows(b, b + 1);
      ops::qk_norm_rope(qkv.rows(b, b + 1), pos_t[size_t(b)], no_spatial, weights_.golden, c.rope_theta,
                        block_norm_eps_, qb, k_new, v_new);
      Tensor ob = o.rows(b, b + 1);
      ops::attention(qb, r.cache->keys(l).rows(0, T + 1), r.cache->values(l).rows(0, T + 1), w.sinks,
                     ops::AttentionMask{T, r.image_begin, r.image_end}, ob);
    }
    ops::linear(o.reshape({B, H * hd}), w.wo, nullptr, x, /*accumulate=*/true);
    ops::feed_forward(x, w.w13, w.w2, block_norm_eps_, {&n, &a, &g});  // (B, D)
  }
  for (const DecodeRow& r : rows) r.cache->set_length(r.cache->length() + 1);

  hidden = act({B, D});
  ops::rms_norm(x, &weights_.norm, c.norm_eps, hidden);
  logits = act({B, V});
  ops::linear(hidden, weights_.output, nullptr, logits);
}

Tensor FalconPerceptionModel::box_head_logits(const BoxHeadWeights& head, const Tensor& hidden) const {
  const int64_t B = hidden.dim(0);
  Tensor t = act({B, head.w1.dim(0)});  // (B, dec)
  ops::linear(hidden, head.w1, nullptr, t);
  ops::squared_relu(t, t);
  Tensor out = act({B, head.w2.dim(0)});  // (B, out) = two halves of bins
  ops::linear(t, head.w2, nullptr, out);
  if (out.on_cpu() && out.dtype() == DType::F32) return out;
  Tensor host = out.to(Device::CPU);
  if (host.dtype() == DType::F32) return host;
  Tensor f32 = Tensor::empty(host.shape(), DType::F32);
  ops::convert(host, f32);
  return f32;
}

Tensor FalconPerceptionModel::coord_logits(const Tensor& hidden) const {
  if (!weights_.coord) throw Unsupported("this model has no coord head");
  return box_head_logits(*weights_.coord, hidden);
}

Tensor FalconPerceptionModel::size_logits(const Tensor& hidden) const {
  if (!weights_.size) throw Unsupported("this model has no size head");
  return box_head_logits(*weights_.size, hidden);
}

Tensor FalconPerceptionModel::fourier_encode(const BoxHeadWeights& head, std::array<float, 2> v) const {
  // transform . [cos(2 pi E v), sin(2 pi E v)], the features in f32 as the reference.
  const int64_t half = head.embed.dim(0);
  Tensor feat = Tensor::empty({1, 2 * half}, DType::F32);  // (1, enc)
  const float* e = head.embed.data<float>();
  const float two_pi = float(2.0 * M_PI);
  for (int64_t i = 0; i < half; ++i) {
    const float proj = e[2 * i] * v[0] + e[2 * i + 1] * v[1];
    const float f = two_pi * proj;
    feat.data<float>()[i] = float(std::cos(double(f)));
    feat.data<float>()[half + i] = float(std::sin(double(f)));
  }
  Tensor out = act({1, int64_t(config_.dim)});
  ops::linear(to_device_activation(feat), head.transform, nullptr, out);
  return out;
}

Tensor FalconPerceptionModel::encode_coord(std::array<float, 2> xy) const {
  if (!weights_.coord) throw Unsupported("this model has no coord head");
  return fourier_encode(*weights_.coord, xy);
}

Tensor FalconPerceptionModel::encode_size(std::array<float, 2> hw) const {
  if (!weights_.size) throw Unsupported("this model has no size head");
  return fourier_encode(*weights_.size, hw);
}

}  // namespace falcon
