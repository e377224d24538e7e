#include "ops/window_cross_attention.h"

#include <algorithm>
#include <cmath>

#include "ops/dispatch.h"

namespace falcon::ops {

KeyWindow attention_window(int64_t i, int64_t n, int64_t m, float ratio) {
  const float pos = (float(i) + 0.5f) / float(n);
  const float lo = std::clamp(pos - ratio, 0.f, 1.f), hi = std::clamp(pos + ratio, 0.f, 1.f);
  return {int64_t(std::floor(lo * float(m))), int64_t(std::ceil(hi * float(m)))};
}

void window_cross_attention(const Tensor& q, const Tensor& k, const Tensor& v, int heads,
                            float ratio, float scale, Tensor& out) {
  const Device d = common_device("window_cross_attention", {&q, &k, &v, &out});
  for (const Tensor* t : {&q, &k, &v, static_cast<const Tensor*>(&out)}) {
    check_rank("window_cross_attention", "argument", *t, 3);
    check_dtype("window_cross_attention", "argument", *t, DType::F32);
  }
  if (heads < 1 || q.dim(0) % heads != 0 || v.dim(0) % heads != 0 || k.dim(0) != q.dim(0) ||
      v.dim(1) != k.dim(1) || v.dim(2) != k.dim(2)) {
    throw InvalidArgument("window_cross_attention: q " + q.describe() + ", k " + k.describe() +
                          ", v " + v.describe() + " do not form " + std::to_string(heads) +
                          " heads");
  }
  if (out.dim(0) != v.dim(0) || out.dim(1) > q.dim(1) || out.dim(2) > q.dim(2) || out.dim(1) < 1 ||
      out.dim(2) < 1) {
    throw InvalidArgument("window_cross_attention: out " + out.describe() +
                          " is not a top-left part of the " + std::to_string(v.dim(0)) + " x " +
                          std::to_string(q.dim(1)) + " x " + std::to_string(q.dim(2)) + " output");
  }
  if (!(ratio > 0.f))
    throw InvalidArgument("window_cross_attention: window ratio must be positive");
  if (d == Device::CPU) {
    cpu::window_cross_attention(q, k, v, heads, ratio, scale, out);
  } else {
    FALCON_CUDA_DISPATCH(cuda::window_cross_attention(q, k, v, heads, ratio, scale, out));
  }
}

}  // namespace falcon::ops
