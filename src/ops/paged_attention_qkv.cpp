#include "ops/paged_attention_qkv.h"

#include <string>

#include "ops/dispatch.h"
#include "ops/paged_attention.h"
#include "ops/qk_norm_rope.h"

namespace falcon::ops {

void paged_attention_qkv(const Tensor& qkv, const Tensor& pos_t, const Tensor& pos_hw, const Tensor& golden,
                         float theta, float eps, Tensor& k_cache, Tensor& v_cache, const Tensor& block_table,
                         const Tensor& seq_lens, const Tensor& sinks, Tensor& out) {
  const char* op = "paged_attention_qkv";
  const Device d =
      common_device(op, {&qkv, &pos_t, &pos_hw, &golden, &k_cache, &v_cache, &block_table, &seq_lens, &sinks, &out});
  check_paged_pool(op, k_cache, v_cache);
  check_rank(op, "out", out, 3);
  const int64_t B = out.dim(0), H = k_cache.dim(2), hd = k_cache.dim(3), K = v_cache.dim(2);
  check_shape(op, "out", out, {B, H, hd});
  check_rope_inputs(op, qkv, pos_t, pos_hw, golden, B, H, K, hd);
  check_paged_rows(op, B, k_cache, block_table, seq_lens, sinks);
  if (k_cache.dtype() != qkv.dtype() || v_cache.dtype() != qkv.dtype() || out.dtype() != qkv.dtype()) {
    throw InvalidArgument("paged_attention_qkv: qkv, the caches and out must share a dtype");
  }
  if (d == Device::CPU) {
    cpu::paged_attention_qkv(qkv, pos_t, pos_hw, golden, theta, eps, k_cache, v_cache, block_table, seq_lens, sinks,
                             out);
  } else {
    FALCON_CUDA_DISPATCH(cuda::paged_attention_qkv(qkv, pos_t, pos_hw, golden, theta, eps, k_cache, v_cache,
                                                   block_table, seq_lens, sinks, out));
  }
}

}  // namespace falcon::ops
