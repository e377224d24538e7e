#include "ops/qk_norm_rope.h"

#include <cmath>

#include "ops/dispatch.h"

namespace falcon::ops {

float rope_inv_freq(float theta, int half_dim, int i) {
  // torch: 1.0 / theta ** (arange(0, dim, 2).float() / dim), all in f32.
  const float exponent = float(2 * i) / float(half_dim);
  return 1.0f / std::pow(theta, exponent);
}

void qk_norm_rope(const Tensor& qkv, const Tensor& pos_t, const Tensor& pos_hw, const Tensor& golden,
                  float theta, float eps, Tensor& q, Tensor& k, Tensor& v) {
  const char* op = "qk_norm_rope";
  const Device d = common_device(op, {&qkv, &pos_t, &pos_hw, &golden, &q, &k, &v});
  check_rank(op, "q", q, 3);
  check_rank(op, "v", v, 3);
  const int64_t S = q.dim(0), H = q.dim(1), hd = q.dim(2), K = v.dim(1);
  if (K <= 0 || H % K != 0) throw InvalidArgument("qk_norm_rope: H must be a multiple of the kv heads");
  if (hd % 4 != 0) throw InvalidArgument("qk_norm_rope: head_dim must be a multiple of 4");
  check_shape(op, "qkv", qkv, {S, (H + 2 * K) * hd});
  check_shape(op, "k", k, {S, H, hd});
  check_shape(op, "v", v, {S, K, hd});
  check_shape(op, "pos_t", pos_t, {S});
  check_dtype(op, "pos_t", pos_t, DType::I32);
  check_shape(op, "pos_hw", pos_hw, {S, 2});
  check_dtype(op, "pos_hw", pos_hw, DType::F32);
  check_shape(op, "golden", golden, {H, hd / 4, 2});
  check_dtype(op, "golden", golden, DType::F32);
  if (q.dtype() != qkv.dtype() || k.dtype() != qkv.dtype() || v.dtype() != qkv.dtype()) {
    throw InvalidArgument("qk_norm_rope: qkv, q, k, v must share a dtype");
  }
  if (d == Device::CPU) {
    cpu::qk_norm_rope(qkv, pos_t, pos_hw, golden, theta, eps, q, k, v);
  } else {
    FALCON_CUDA_DISPATCH(cuda::qk_norm_rope(qkv, pos_t, pos_hw, golden, theta, eps, q, k, v));
  }
}

}  // namespace falcon::ops
