#include "ops/decode_layers.h"

#include <string>

#include "ops/dispatch.h"
#include "ops/feed_forward.h"
#include "ops/linear.h"
#include "ops/paged_attention.h"
#include "ops/paged_attention_qkv.h"
#include "ops/qk_norm_rope.h"

namespace falcon::ops {

namespace {

void check_layer(const char* op, const DecodeLayer& l, int64_t B, int64_t D, const Tensor& x,
                 const Tensor& pos_t, const Tensor& pos_hw, const Tensor& golden,
                 const Tensor& block_table, const Tensor& seq_lens, const DecodeScratch& s) {
  if (!l.wqkv || !l.wo || !l.w13 || !l.w2 || !l.sinks || !l.k_cache || !l.v_cache) {
    throw InvalidArgument(std::string(op) + ": a layer lacks a tensor");
  }
  common_device(op, {&x, l.wqkv, l.wo, l.w13, l.w2, l.sinks, l.k_cache, l.v_cache});
  check_paged_pool(op, *l.k_cache, *l.v_cache);
  const int64_t H = l.k_cache->dim(2), hd = l.k_cache->dim(3), K = l.v_cache->dim(2),
                F = l.w2->dim(1);
  const auto weight = [&](const char* name, const Tensor& w, int64_t n, int64_t k) {
    if (w.rank() != 2 || w.dim(0) != n || w.dim(1) != k) {
      throw InvalidArgument(std::string(op) + ": " + name + " is " + w.describe() + ", expected [" +
                            std::to_string(n) + ", " + std::to_string(k) + "]");
    }
  };
  weight("wqkv", *l.wqkv, (H + 2 * K) * hd, D);
  weight("wo", *l.wo, D, H * hd);
  weight("w13", *l.w13, 2 * F, D);
  weight("w2", *l.w2, D, F);
  check_rope_inputs(op, *s.qkv, pos_t, pos_hw, golden, B, H, K, hd);
  check_paged_rows(op, B, *l.k_cache, block_table, seq_lens, *l.sinks);
  if (l.k_cache->dtype() != x.dtype() || l.v_cache->dtype() != x.dtype()) {
    throw InvalidArgument(std::string(op) + ": the caches and x must share a dtype");
  }
}

}  // namespace

void decode_layers(Tensor& x, const std::vector<DecodeLayer>& layers, const Tensor& pos_t,
                   const Tensor& pos_hw, const Tensor& golden, float theta, float eps,
                   const Tensor& block_table, const Tensor& seq_lens, const DecodeScratch& s) {
  const char* op = "decode_layers";
  if (layers.empty()) throw InvalidArgument("decode_layers: no layers");
  if (!s.n || !s.qkv || !s.o || !s.a || !s.g)
    throw InvalidArgument("decode_layers: missing scratch tensors");
  const Device d = common_device(
      op, {&x, &pos_t, &pos_hw, &golden, &block_table, &seq_lens, s.n, s.qkv, s.o, s.a, s.g});
  check_rank(op, "x", x, 2);
  const int64_t B = x.dim(0), D = x.dim(1);
  for (const DecodeLayer& l : layers)
    check_layer(op, l, B, D, x, pos_t, pos_hw, golden, block_table, seq_lens, s);

  bool fused = false;
#ifdef FALCON_HAS_CUDA
  if (d == Device::CUDA) {
    const OpProfileScope profile(__func__);
    fused =
        cuda::decode_layers(x, layers, pos_t, pos_hw, golden, theta, eps, block_table, seq_lens);
  }
#else
  (void)d;
#endif
  if (fused) return;
  const LinearPrologue norm{LinearPrologue::Kind::RmsNorm, eps, s.n};
  for (const DecodeLayer& l : layers) {
    const int64_t H = l.k_cache->dim(2), hd = l.k_cache->dim(3);
    // x += wo . attn(rope(norm(q)), rope(norm(k)), v); the rms_norm runs inside wqkv's product
    linear(x, *l.wqkv, nullptr, *s.qkv, false, norm);  // (B, (H + 2K) hd)
    paged_attention_qkv(*s.qkv, pos_t, pos_hw, golden, theta, eps, *l.k_cache, *l.v_cache,
                        block_table, seq_lens, *l.sinks, *s.o);  // (B, H, hd)
    linear(s.o->reshape({B, H * hd}), *l.wo, nullptr, x, /*accumulate=*/true);
    // x += w2 . (relu(gate)^2 * up), gate and up from w13 . norm(x)
    feed_forward(x, *l.w13, *l.w2, eps, {s.n, s.a, s.g});  // (B, D)
  }
}

}  // namespace falcon::ops
