#include "ops/paged_attention_qkv.h"

#include <string>

#include "ops/dispatch.h"

namespace falcon::ops {

void paged_attention_qkv(const Tensor& qkv, const Tensor& pos_t, const Tensor& pos_hw, const Tensor& golden,
                         float theta, float eps, Tensor& k_cache, Tensor& v_cache, const Tensor& block_table,
                         const Tensor& seq_lens, const Tensor& sinks, Tensor& out) {
  const char* op = "paged_attention_qkv";
  const Device d =
      common_device(op, {&qkv, &pos_t, &pos_hw, &golden, &k_cache, &v_cache, &block_table, &seq_lens, &sinks, &out});
  check_rank(op, "k_cache", k_cache, 4);
  check_rank(op, "v_cache", v_cache, 4);
  check_rank(op, "out", out, 3);
  const int64_t B = out.dim(0), H = k_cache.dim(2), hd = k_cache.dim(3), K = v_cache.dim(2);
  if (K <= 0 || H % K != 0) throw InvalidArgument("paged_attention_qkv: H must be a multiple of the kv heads");
  if (hd % 4 != 0) throw InvalidArgument("paged_attention_qkv: head_dim must be a multiple of 4");
  if (k_cache.dim(1) <= 0) throw InvalidArgument("paged_attention_qkv: block_size must be positive");
  check_shape(op, "v_cache", v_cache, {k_cache.dim(0), k_cache.dim(1), K, hd});
  check_shape(op, "out", out, {B, H, hd});
  check_shape(op, "qkv", qkv, {B, (H + 2 * K) * hd});
  check_shape(op, "pos_t", pos_t, {B});
  check_dtype(op, "pos_t", pos_t, DType::I32);
  check_shape(op, "pos_hw", pos_hw, {B, 2});
  check_dtype(op, "pos_hw", pos_hw, DType::F32);
  check_shape(op, "golden", golden, {H, hd / 4, 2});
  check_dtype(op, "golden", golden, DType::F32);
  check_rank(op, "block_table", block_table, 2);
  if (block_table.dim(0) != B) throw InvalidArgument("paged_attention_qkv: block_table needs one row per sequence");
  check_dtype(op, "block_table", block_table, DType::I32);
  check_shape(op, "seq_lens", seq_lens, {B});
  check_dtype(op, "seq_lens", seq_lens, DType::I32);
  check_shape(op, "sinks", sinks, {H});
  check_dtype(op, "sinks", sinks, DType::F32);
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
