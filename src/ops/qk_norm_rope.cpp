#include "ops/qk_norm_rope.h"

#include <cmath>
#include <string>

#include "ops/dispatch.h"

namespace falcon::ops {

float rope_inv_freq(float theta, int half_dim, int i) {
  // torch: 1.0 / theta ** (arange(0, dim, 2).float() / dim), all in f32.
  const float exponent = float(2 * i) / float(half_dim);
  return 1.0f / std::pow(theta, exponent);
}

void check_rope_inputs(const char* op, const Tensor& qkv, const Tensor& pos_t, const Tensor& pos_hw,
                       const Tensor& golden, int64_t S, int64_t H, int64_t K, int64_t hd) {
  if (K <= 0 || H % K != 0) throw InvalidArgument(std::string(op) + ": H must be a multiple of the kv heads");
  if (hd % 4 != 0) throw InvalidArgument(std::string(op) + ": head_dim must be a multiple of 4");
  check_shape(op, "qkv", qkv, {S, (H + 2 * K) * hd});
  check_shape(op, "pos_t", pos_t, {S});
  check_dtype(op, "pos_t", pos_t, DType::I32);
  check_shape(op, "pos_hw", pos_hw, {S, 2});
  check_dtype(op, "pos_hw", pos_hw, DType::F32);
  check_shape(op, "golden", golden, {H, hd / 4, 2});
  check_dtype(op, "golden", golden, DType::F32);
}

namespace {

// Shapes and dtypes common to both entry points; k/v rows are checked by the caller.
void check_inputs(const char* op, const Tensor& qkv, const Tensor& pos_t, const Tensor& pos_hw, const Tensor& golden,
                  const Tensor& q, int64_t K, DType dtype) {
  check_rank(op, "q", q, 3);
  check_rope_inputs(op, qkv, pos_t, pos_hw, golden, q.dim(0), q.dim(1), K, q.dim(2));
  if (q.dtype() != qkv.dtype() || dtype != qkv.dtype()) {
    throw InvalidArgument(std::string(op) + ": qkv, q, k, v must share a dtype");
  }
}

}  // namespace

void qk_norm_rope(const Tensor& qkv, const Tensor& pos_t, const Tensor& pos_hw, const Tensor& golden,
                  float theta, float eps, Tensor& q, Tensor& k, Tensor& v) {
  const char* op = "qk_norm_rope";
  const Device d = common_device(op, {&qkv, &pos_t, &pos_hw, &golden, &q, &k, &v});
  check_rank(op, "v", v, 3);
  check_inputs(op, qkv, pos_t, pos_hw, golden, q, v.dim(1), v.dtype());
  const int64_t S = q.dim(0), H = q.dim(1), hd = q.dim(2), K = v.dim(1);
  check_shape(op, "k", k, {S, H, hd});
  check_shape(op, "v", v, {S, K, hd});
  if (k.dtype() != qkv.dtype()) throw InvalidArgument("qk_norm_rope: qkv, q, k, v must share a dtype");
  if (d == Device::CPU) {
    cpu::qk_norm_rope(qkv, pos_t, pos_hw, golden, theta, eps, q, k, v, nullptr);
  } else {
    FALCON_CUDA_DISPATCH(cuda::qk_norm_rope(qkv, pos_t, pos_hw, golden, theta, eps, q, k, v, nullptr));
  }
}

void qk_norm_rope_paged(const Tensor& qkv, const Tensor& pos_t, const Tensor& pos_hw, const Tensor& golden,
                        float theta, float eps, Tensor& q, const Tensor& slots, Tensor& k_cache, Tensor& v_cache) {
  const char* op = "qk_norm_rope_paged";
  const Device d = common_device(op, {&qkv, &pos_t, &pos_hw, &golden, &q, &slots, &k_cache, &v_cache});
  check_rank(op, "k_cache", k_cache, 4);
  check_rank(op, "v_cache", v_cache, 4);
  check_inputs(op, qkv, pos_t, pos_hw, golden, q, v_cache.dim(2), v_cache.dtype());
  const int64_t S = q.dim(0), H = q.dim(1), hd = q.dim(2), K = v_cache.dim(2);
  const int64_t blocks = k_cache.dim(0), bs = k_cache.dim(1);
  check_shape(op, "k_cache", k_cache, {blocks, bs, H, hd});
  check_shape(op, "v_cache", v_cache, {blocks, bs, K, hd});
  check_shape(op, "slots", slots, {S});
  check_dtype(op, "slots", slots, DType::I32);
  if (k_cache.dtype() != qkv.dtype()) throw InvalidArgument("qk_norm_rope_paged: qkv, q and the caches must share a dtype");
  Tensor k_rows = k_cache.reshape({blocks * bs, H, hd});  // slot = row of the pool
  Tensor v_rows = v_cache.reshape({blocks * bs, K, hd});
  if (d == Device::CPU) {
    cpu::qk_norm_rope(qkv, pos_t, pos_hw, golden, theta, eps, q, k_rows, v_rows, &slots);
  } else {
    FALCON_CUDA_DISPATCH(cuda::qk_norm_rope(qkv, pos_t, pos_hw, golden, theta, eps, q, k_rows, v_rows, &slots));
  }
}

}  // namespace falcon::ops
