// The decode attention with its input stage on CUDA: decode_attention_kernel (attention_split.cuh)
// with its QKV stage where the keys stream through the ring; otherwise (staged splits, shapes
// that kernel does not take) the input-stage kernel, finding each row's slot in the table, then
// the attention.
#include <cmath>

#include "ops/attention_split.cuh"
#include "ops/cuda_common.cuh"
#include "ops/grow_buffer_cuda.cuh"
#include "ops/paged_attention.h"
#include "ops/paged_attention_qkv.h"
#include "ops/qk_norm_rope.h"

namespace falcon::ops::cuda {

void paged_attention_qkv(const Tensor& qkv, const Tensor& pos_t, const Tensor& pos_hw, const Tensor& golden,
                         float theta, float eps, Tensor& k_cache, Tensor& v_cache, const Tensor& block_table,
                         const Tensor& seq_lens, const Tensor& sinks, Tensor& out) {
  const int64_t B = out.dim(0), H = k_cache.dim(2), hd = k_cache.dim(3), K = v_cache.dim(2);
  if (B == 0) return;
  const int64_t num_blocks = k_cache.dim(0), bs = k_cache.dim(1), max_blocks = block_table.dim(1);
  if (max_blocks * bs > int64_t(INT32_MAX)) throw Unsupported("paged_attention_qkv (cuda): table too large");
  const AttentionTuning t = attention_tuning();
  // The input-stage kernel, then the attention (its q in a grow-only buffer: no allocation once
  // warm, so a graph can capture it); the input stage finds each row's slot in the table.
  const auto two_kernels = [&] {
    auto* buf = grow_buffer(GrowBuffer::DecodeInputStage, row_bytes(qkv.dtype(), B * H * hd));
    Tensor q = Tensor::wrap(buf, {B, H, hd}, qkv.dtype(), Device::CUDA, nullptr);
    Tensor k_rows = k_cache.reshape({num_blocks * bs, H, hd}), v_rows = v_cache.reshape({num_blocks * bs, K, hd});
    const NewestSlots newest{&block_table, &seq_lens, bs};
    qk_norm_rope(qkv, pos_t, pos_hw, golden, theta, eps, q, k_rows, v_rows, nullptr, &newest);
    paged_attention(q, k_cache, v_cache, block_table, seq_lens, sinks, out);
  };
  const bool fusable = t.decode_fused_input != 0 && t.decode_kernel && (hd == 64 || hd == 128) && B <= 65535 &&
                       aligned_to(qkv.raw(), 16) && aligned_to(k_cache.raw(), 16) && aligned_to(v_cache.raw(), 16);
  if (!fusable) {
    two_kernels();
    return;
  }
  const attn::PagedKeys keys =
      attn::paged_keys(block_table.data<int32_t>(), seq_lens.data<int32_t>(), max_blocks, bs, num_blocks);
  dispatch_float(qkv.dtype(), "paged_attention_qkv", [&](auto tag) {
    using T = typename decltype(tag)::type;
    attn::DecodeParams<T> p{};
    p.k = k_cache.data<T>();
    p.v = v_cache.data<T>();
    p.out = out.data<T>();
    p.sinks = sinks.data<float>();
    p.H = int(H);
    p.K = int(K);
    p.max_keys = int(max_blocks * bs);
    p.scale_log2 = float(1.4426950408889634 / std::sqrt(double(hd)));
    p.qkv = qkv.data<T>();
    p.pos_t = pos_t.data<int32_t>();
    p.pos_hw = pos_hw.data<float>();
    p.golden = golden.data<float>();
    p.k_pool = k_cache.data<T>();
    p.v_pool = v_cache.data<T>();
    p.eps = eps;
    p.inv_freq = rope_inv_freqs(theta, int(hd));
    // Auto (-1): fused where the keys stream through the ring; where launch_decode stages whole
    // splits, the separate input-stage kernel overlaps those copies and measured faster
    // (docs/cuda.md, Phase 6), so it declines and the two kernels run.
    const bool launched = attn::launch_decode_rows<T, attn::PagedKeys, true>(p, keys, int(B), int(hd), max_blocks * bs,
                                                                            t.decode_fused_input > 0);
    if (!launched) two_kernels();
  });
}

}  // namespace falcon::ops::cuda
