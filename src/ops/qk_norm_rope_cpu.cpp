#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/parallel.h"
#include "ops/qk_norm_rope.h"

namespace falcon::ops::cpu {

namespace {

void rms_normalise(const float* x, float* out, int64_t n, float eps) {
  double ss = 0;
  for (int64_t j = 0; j < n; ++j) ss += double(x[j]) * x[j];
  const float inv = float(1.0 / std::sqrt(ss / double(n) + double(eps)));
  for (int64_t j = 0; j < n; ++j) out[j] = x[j] * inv;
}

// Rotates pairs (2i, 2i+1) of x[0 .. 2*n) by angles with the given cos/sin.
void rotate_pairs(float* x, const float* cos_a, const float* sin_a, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float a = x[2 * i], b = x[2 * i + 1];
    x[2 * i] = a * cos_a[i] - b * sin_a[i];
    x[2 * i + 1] = a * sin_a[i] + b * cos_a[i];
  }
}

}  // namespace

void qk_norm_rope(const Tensor& qkv, const Tensor& pos_t, const Tensor& pos_hw, const Tensor& golden,
                  float theta, float eps, Tensor& q, Tensor& k, Tensor& v, const Tensor* slots) {
  if (qkv.dtype() != DType::F32) throw Unsupported("qk_norm_rope (cpu): only F32 activations");
  const int64_t S = q.dim(0), H = q.dim(1), hd = q.dim(2), K = v.dim(1);
  // Output row of each input row: itself, or its slot in a paged pool (negative: none).
  std::vector<int64_t> dst_row(static_cast<size_t>(S));
  for (int64_t s = 0; s < S; ++s) {
    dst_row[size_t(s)] = slots ? slots->data<int32_t>()[s] : s;
    if (dst_row[size_t(s)] >= k.dim(0)) {
      throw InvalidArgument("qk_norm_rope_paged: slot " + std::to_string(dst_row[size_t(s)]) + " past the pool's " +
                            std::to_string(k.dim(0)) + " rows");
    }
  }
  const int64_t group = H / K;
  const int64_t half = hd / 2, quarter = hd / 4;
  const int64_t row = (H + 2 * K) * hd;
  std::vector<float> inv_freq(static_cast<size_t>(quarter));
  for (int64_t i = 0; i < quarter; ++i) inv_freq[size_t(i)] = rope_inv_freq(theta, int(half), int(i));

  const float* src = qkv.data<float>();
  const int32_t* pt = pos_t.data<int32_t>();
  const float* phw = pos_hw.data<float>();
  const float* g = golden.data<float>();
  float* qo = q.data<float>();
  float* ko = k.data<float>();
  float* vo = v.data<float>();

  parallel_for(S, 16, [&](int64_t s0, int64_t s1) {
    std::vector<float> cos_t(static_cast<size_t>(quarter)), sin_t(static_cast<size_t>(quarter));
    std::vector<float> cos_g(static_cast<size_t>(quarter)), sin_g(static_cast<size_t>(quarter));
    std::vector<float> knorm(static_cast<size_t>(hd));
    for (int64_t s = s0; s < s1; ++s) {
      // Temporal angles: f32 product as torch.outer computes it, then exact cos/sin.
      for (int64_t i = 0; i < quarter; ++i) {
        const float angle = float(pt[s]) * inv_freq[size_t(i)];
        cos_t[size_t(i)] = float(std::cos(double(angle)));
        sin_t[size_t(i)] = float(std::sin(double(angle)));
      }
      const float ph = phw[2 * s], pw = phw[2 * s + 1];
      const bool spatial = ph != 0.f || pw != 0.f;
      auto golden_angles = [&](int64_t h) {
        for (int64_t f = 0; f < quarter; ++f) {
          const float angle = ph * g[(h * quarter + f) * 2] + pw * g[(h * quarter + f) * 2 + 1];
          cos_g[size_t(f)] = float(std::cos(double(angle)));
          sin_g[size_t(f)] = float(std::sin(double(angle)));
        }
      };
      const float* in = src + s * row;
      for (int64_t h = 0; h < H; ++h) {
        float* qh = qo + (s * H + h) * hd;
        rms_normalise(in + h * hd, qh, hd, eps);
        rotate_pairs(qh, cos_t.data(), sin_t.data(), quarter);
        if (spatial) {
          golden_angles(h);
          rotate_pairs(qh + half, cos_g.data(), sin_g.data(), quarter);
        }
      }
      const int64_t dst = dst_row[size_t(s)];
      if (dst < 0) continue;  // padding row: no key or value
      for (int64_t kh = 0; kh < K; ++kh) {
        rms_normalise(in + (H + kh) * hd, knorm.data(), hd, eps);
        rotate_pairs(knorm.data(), cos_t.data(), sin_t.data(), quarter);
        // Each query head of the group rotates its own copy (golden frequencies are per head).
        for (int64_t r = 0; r < group; ++r) {
          const int64_t h = kh * group + r;
          float* kd = ko + (dst * H + h) * hd;
          std::memcpy(kd, knorm.data(), size_t(hd) * sizeof(float));
          if (spatial) {
            golden_angles(h);
            rotate_pairs(kd + half, cos_g.data(), sin_g.data(), quarter);
          }
        }
        std::memcpy(vo + (dst * K + kh) * hd, in + (H + K + kh) * hd, size_t(hd) * sizeof(float));
      }
    }
  });
}

}  // namespace falcon::ops::cpu
