#include "engine/sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace falcon {

int32_t sample_token(const float* logits, int64_t vocab, float temperature, int top_k, std::mt19937_64& rng) {
  if (temperature <= 0.f) {
    int64_t best = 0;
    for (int64_t j = 1; j < vocab; ++j) {
      if (logits[j] > logits[best]) best = j;
    }
    return int32_t(best);
  }
  std::vector<int32_t> idx(static_cast<size_t>(vocab));
  std::iota(idx.begin(), idx.end(), 0);
  int64_t keep = vocab;
  if (top_k > 0 && top_k < vocab) {
    keep = top_k;
    std::partial_sort(idx.begin(), idx.begin() + keep, idx.end(),
                      [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
  }
  double mx = -INFINITY;
  for (int64_t i = 0; i < keep; ++i) mx = std::max(mx, double(logits[idx[size_t(i)]]) / temperature);
  std::vector<double> w(static_cast<size_t>(keep));
  double total = 0;
  for (int64_t i = 0; i < keep; ++i) {
    w[size_t(i)] = std::exp(double(logits[idx[size_t(i)]]) / temperature - mx);
    total += w[size_t(i)];
  }
  double u = std::uniform_real_distribution<double>(0.0, total)(rng);
  for (int64_t i = 0; i < keep; ++i) {
    u -= w[size_t(i)];
    if (u < 0) return idx[size_t(i)];
  }
  return idx[size_t(keep - 1)];
}

}  // namespace falcon
