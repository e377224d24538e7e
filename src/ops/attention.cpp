#include "ops/attention.h"

#include "ops/dispatch.h"

namespace falcon::ops {

void attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& sinks,
               const AttentionMask& mask, Tensor& out) {
  const char* op = "attention";
  const Device d = common_device(op, {&q, &k, &v, &sinks, &out});
  check_rank(op, "q", q, 3);
  check_rank(op, "k", k, 3);
  check_rank(op, "v", v, 3);
  const int64_t S = q.dim(0), H = q.dim(1), hd = q.dim(2), T = k.dim(0), K = v.dim(1);
  if (T != mask.q_offset + S) {
    throw InvalidArgument("attention: " + std::to_string(T) + " keys for q_offset " + std::to_string(mask.q_offset) +
                          " + " + std::to_string(S) + " queries");
  }
  if (K <= 0 || H % K != 0) throw InvalidArgument("attention: H must be a multiple of the kv heads");
  check_shape(op, "k", k, {T, H, hd});
  check_shape(op, "v", v, {T, K, hd});
  check_shape(op, "sinks", sinks, {H});
  check_dtype(op, "sinks", sinks, DType::F32);
  check_shape(op, "out", out, {S, H, hd});
  if (k.dtype() != q.dtype() || v.dtype() != q.dtype() || out.dtype() != q.dtype()) {
    throw InvalidArgument("attention: q, k, v, out must share a dtype");
  }
  if (mask.image_begin < 0 || mask.image_end < mask.image_begin || mask.image_end > T) {
    throw InvalidArgument("attention: image span out of range");
  }
  if (d == Device::CPU) {
    cpu::attention(q, k, v, sinks, mask, out);
  } else {
    FALCON_CUDA_DISPATCH(cuda::attention(q, k, v, sinks, mask, out));
  }
}

}  // namespace falcon::ops
