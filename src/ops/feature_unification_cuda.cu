// CUDA feature_unification: one thread per output pixel (all O outputs), looping over the c
// input channels: the O convolution values of a channel, their softmax over O, accumulated.
#include <algorithm>

#include "ops/cuda_common.cuh"
#include "ops/feature_unification.h"

namespace falcon::ops::cuda {
namespace {
constexpr int kMaxO = 256;

// y index i = g*O + o is read as grid row i / c, column i % c: column j of row r is
// conv(channel (r*c + j) / O, kernel (r*c + j) % O).
// Thread per (pixel, slice of the c columns); partial sums added atomically into out (zeroed).
__global__ void unify_kernel(const float* x, const float* basis, float* out, int64_t c, int64_t h, int64_t w,
                             int64_t no, int64_t k, int64_t slices) {
  const int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (t >= h * w * slices) return;
  const int64_t p = t % (h * w), slice = t / (h * w);
  const int64_t j0 = slice * c / slices, j1 = (slice + 1) * c / slices;
  const int64_t py = p / w, px = p % w, r = k / 2;
  auto inside = [r](int64_t i, int64_t n) {
    const int64_t hi = i + r < n - 1 ? i + r : n - 1, lo = i - r > 0 ? i - r : 0;
    return hi - lo + 1;
  };
  const float inv_denom = 1.f / float(inside(py, h) * inside(px, w));
  auto conv = [&](int64_t g, int64_t o) {
    float s = 0.f;
    for (int64_t dy = 0; dy < k; ++dy) {
      const int64_t sy = py + dy - r;
      if (sy < 0 || sy >= h) continue;
      for (int64_t dx = 0; dx < k; ++dx) {
        const int64_t sx = px + dx - r;
        if (sx < 0 || sx >= w) continue;
        s += basis[(o * k + dy) * k + dx] * x[(g * h + sy) * w + sx];
      }
    }
    return s * inv_denom;
  };
  float acc[kMaxO], y[kMaxO];
  for (int64_t o = 0; o < no; ++o) acc[o] = 0.f;
  for (int64_t j = j0; j < j1; ++j) {
    float mx = -3.4e38f;
    for (int64_t row = 0; row < no; ++row) {
      const int64_t i = row * c + j;
      y[row] = conv(i / no, i % no);
      mx = fmaxf(mx, y[row]);
    }
    float sum = 0.f;
    for (int64_t row = 0; row < no; ++row) {
      y[row] = expf(y[row] - mx);
      sum += y[row];
    }
    const float inv = 1.f / sum;
    for (int64_t row = 0; row < no; ++row) acc[row] += y[row] * inv;
  }
  const float inv_c = 1.f / float(c);
  for (int64_t o = 0; o < no; ++o) atomicAdd(out + o * h * w + p, acc[o] * inv_c);
}
}  // namespace

void feature_unification(const Tensor& x, const Tensor& basis, Tensor& out) {
  const int64_t c = x.dim(0), h = x.dim(1), w = x.dim(2), no = basis.dim(0), k = basis.dim(2);
  if (no > kMaxO) throw Unsupported("feature_unification on CUDA: more than 256 output channels");
  if (h * w == 0) return;
  const int64_t slices = std::max<int64_t>(1, std::min<int64_t>(c, 16));
  FALCON_CUDA_CHECK(cudaMemsetAsync(out.raw(), 0, size_t(out.numel()) * sizeof(float), stream()));
  const int64_t n = h * w * slices;
  unify_kernel<<<unsigned((n + 63) / 64), 64, 0, stream()>>>(x.data<float>(), basis.data<float>(), out.data<float>(),
                                                              c, h, w, no, k, slices);
  FALCON_CUDA_CHECK_LAUNCH("unify_kernel");
}

}  // namespace falcon::ops::cuda
