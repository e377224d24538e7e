#include "engine/box_decoding.h"

#include <cmath>
#include <vector>

namespace falcon {

namespace {

int argmax(const float* v, int n) {
  int best = 0;
  for (int i = 1; i < n; ++i) {
    if (v[i] > v[best]) best = i;
  }
  return best;
}

bool repeats(const std::array<float, 2>& xy, const std::vector<std::array<float, 2>>& earlier, float threshold) {
  for (const auto& e : earlier) {
    if (std::max(std::fabs(e[0] - xy[0]), std::fabs(e[1] - xy[1])) < threshold) return true;
  }
  return false;
}

}  // namespace

std::array<float, 2> decode_coord(const float* logits, int bins_total,
                                  const std::vector<std::array<float, 2>>& earlier, float threshold) {
  const int bins = bins_total / 2;
  const std::array<float, 2> first{float(argmax(logits, bins)) / float(bins),
                                   float(argmax(logits + bins, bins)) / float(bins)};
  if (threshold <= 0.f || !repeats(first, earlier, threshold)) return first;
  std::vector<float> x(logits, logits + bins), y(logits + bins, logits + 2 * bins);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const int bx = argmax(x.data(), bins), by = argmax(y.data(), bins);
    const std::array<float, 2> xy{float(bx) / float(bins), float(by) / float(bins)};
    if (!repeats(xy, earlier, threshold)) return xy;
    x[size_t(bx)] = -INFINITY;
    y[size_t(by)] = -INFINITY;
  }
  return first;
}

std::array<float, 2> decode_size(const float* logits, int bins_total) {
  const int bins = bins_total / 2;
  // f32 throughout, as the reference computes it.
  const float min_size = std::log2(1.0f / float(bins));
  std::array<float, 2> hw{};
  for (int half = 0; half < 2; ++half) {
    const float v = float(argmax(logits + half * bins, bins)) / float(bins - 1);
    hw[size_t(half)] = std::pow(2.0f, v * (0.0f - min_size) + min_size);
  }
  return hw;
}

std::array<float, 4> pixel_box(float x, float y, float h, float w, int W, int H) {
  return {(x - w / 2) * float(W), (y - h / 2) * float(H), (x + w / 2) * float(W), (y + h / 2) * float(H)};
}

}  // namespace falcon
