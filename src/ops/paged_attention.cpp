#include "ops/paged_attention.h"

#include "ops/dispatch.h"

namespace falcon::ops {

void check_paged_pool(const char* op, const Tensor& k_cache, const Tensor& v_cache) {
  check_rank(op, "k_cache", k_cache, 4);
  check_rank(op, "v_cache", v_cache, 4);
  const int64_t H = k_cache.dim(2), K = v_cache.dim(2);
  if (K <= 0 || H % K != 0) throw InvalidArgument(std::string(op) + ": H must be a multiple of the kv heads");
  if (k_cache.dim(1) <= 0) throw InvalidArgument(std::string(op) + ": block_size must be positive");
  check_shape(op, "v_cache", v_cache, {k_cache.dim(0), k_cache.dim(1), K, k_cache.dim(3)});
  if (v_cache.dtype() != k_cache.dtype()) throw InvalidArgument(std::string(op) + ": caches must share a dtype");
}

void check_paged_rows(const char* op, int64_t B, const Tensor& k_cache, const Tensor& block_table,
                      const Tensor& seq_lens, const Tensor& sinks) {
  check_rank(op, "block_table", block_table, 2);
  if (block_table.dim(0) != B) throw InvalidArgument(std::string(op) + ": block_table needs one row per sequence");
  check_dtype(op, "block_table", block_table, DType::I32);
  check_shape(op, "seq_lens", seq_lens, {B});
  check_dtype(op, "seq_lens", seq_lens, DType::I32);
  check_shape(op, "sinks", sinks, {k_cache.dim(2)});
  check_dtype(op, "sinks", sinks, DType::F32);
}

void paged_kv_write(const Tensor& k, const Tensor& v, const Tensor& slots, Tensor& k_cache, Tensor& v_cache) {
  const char* op = "paged_kv_write";
  const Device d = common_device(op, {&k, &v, &slots, &k_cache, &v_cache});
  check_paged_pool(op, k_cache, v_cache);
  const int64_t N = slots.dim(0), H = k_cache.dim(2), K = v_cache.dim(2), hd = k_cache.dim(3);
  check_rank(op, "slots", slots, 1);
  check_dtype(op, "slots", slots, DType::I32);
  check_shape(op, "k", k, {N, H, hd});
  check_shape(op, "v", v, {N, K, hd});
  if (k.dtype() != k_cache.dtype() || v.dtype() != k_cache.dtype()) {
    throw InvalidArgument("paged_kv_write: k, v and the caches must share a dtype");
  }
  if (d == Device::CPU) {
    cpu::paged_kv_write(k, v, slots, k_cache, v_cache);
  } else {
    FALCON_CUDA_DISPATCH(cuda::paged_kv_write(k, v, slots, k_cache, v_cache));
  }
}

void paged_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& block_table,
                     const Tensor& seq_lens, const Tensor& sinks, Tensor& out) {
  const char* op = "paged_attention";
  const Device d = common_device(op, {&q, &k_cache, &v_cache, &block_table, &seq_lens, &sinks, &out});
  check_paged_pool(op, k_cache, v_cache);
  check_rank(op, "q", q, 3);
  const int64_t B = q.dim(0), H = k_cache.dim(2), hd = k_cache.dim(3);
  check_shape(op, "q", q, {B, H, hd});
  check_shape(op, "out", out, {B, H, hd});
  check_paged_rows(op, B, k_cache, block_table, seq_lens, sinks);
  if (k_cache.dtype() != q.dtype() || out.dtype() != q.dtype()) {
    throw InvalidArgument("paged_attention: q, the caches and out must share a dtype");
  }
  if (d == Device::CPU) {
    cpu::paged_attention(q, k_cache, v_cache, block_table, seq_lens, sinks, out);
  } else {
    FALCON_CUDA_DISPATCH(cuda::paged_attention(q, k_cache, v_cache, block_table, seq_lens, sinks, out));
  }
}

}  // namespace falcon::ops
