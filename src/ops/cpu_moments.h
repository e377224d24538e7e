// Per-channel mean and variance of values streamed through a CPU kernel's epilogue (the
// statistics a following GroupNorm needs), without another pass over the data.
//
// Values are summed around a per-channel shift (the channel's first value), so a large
// mean does not cancel the variance, in lanes of float partial sums (the adds vectorise)
// that are flushed to double often enough for float to lose nothing at the 1e-7 level.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace falcon::ops::cpu {

class MomentsAccumulator {
 public:
  static constexpr int64_t kLanes = 32;

  explicit MomentsAccumulator(int64_t channels)
      : lanes_s_(size_t(channels * kLanes)),
        lanes_q_(size_t(channels * kLanes)),
        shift_(size_t(channels)),
        has_shift_(size_t(channels)),
        n_(size_t(channels)),
        s_(size_t(channels)),
        q_(size_t(channels)) {}

  // Adds v[0 .. count) (count <= kLanes) to channel c.
  void add(int64_t c, const float* v, int64_t count) {
    if (!has_shift_[size_t(c)]) {
      shift_[size_t(c)] = v[0];
      has_shift_[size_t(c)] = 1;
    }
    const float sh = shift_[size_t(c)];
    float* ls = lanes_s_.data() + c * kLanes;
    float* lq = lanes_q_.data() + c * kLanes;
    for (int64_t j = 0; j < count; ++j) {
      const float d = v[j] - sh;
      ls[j] += d;
      lq[j] += d * d;
    }
    n_[size_t(c)] += count;
  }

  // Call after every channel received one more row of values; flushes now and then.
  void row_done() {
    if (++rows_ >= kFlushRows) flush();
  }

  void flush() {
    rows_ = 0;
    for (size_t c = 0; c < shift_.size(); ++c) {
      double s = 0, q = 0;
      for (int64_t j = 0; j < kLanes; ++j) {
        s += lanes_s_[c * kLanes + size_t(j)];
        q += lanes_q_[c * kLanes + size_t(j)];
      }
      s_[c] += s;
      q_[c] += q;
    }
    std::fill(lanes_s_.begin(), lanes_s_.end(), 0.f);
    std::fill(lanes_q_.begin(), lanes_q_.end(), 0.f);
  }

  // Count, mean and sum of squared deviations of channel c (after flush()).
  void result(int64_t c, double& n, double& mean, double& m2) const {
    n = double(n_[size_t(c)]);
    const double s = s_[size_t(c)], q = q_[size_t(c)];
    mean = n > 0 ? shift_[size_t(c)] + s / n : 0.0;
    m2 = n > 0 ? std::max(0.0, q - s * s / n) : 0.0;
  }

 private:
  static constexpr int kFlushRows = 64;
  std::vector<float> lanes_s_, lanes_q_, shift_;
  std::vector<uint8_t> has_shift_;
  std::vector<int64_t> n_;
  std::vector<double> s_, q_;
  int rows_ = 0;
};

// Chan et al.'s pairwise combination of (count, mean, M2) summaries, per channel.
struct MomentsTotal {
  std::vector<double> n, mean, m2;

  explicit MomentsTotal(int64_t channels)
      : n(size_t(channels)), mean(size_t(channels)), m2(size_t(channels)) {}

  void merge(MomentsAccumulator& acc) {
    acc.flush();
    for (size_t c = 0; c < n.size(); ++c) {
      double nb = 0, mb = 0, qb = 0;
      acc.result(int64_t(c), nb, mb, qb);
      if (nb == 0) continue;
      const double na = n[c], total = na + nb, delta = mb - mean[c];
      mean[c] += delta * nb / total;
      m2[c] += qb + delta * delta * na * nb / total;
      n[c] = total;
    }
  }

  // (mean, biased variance) per channel into out [C, 2].
  void write(float* out) const {
    for (size_t c = 0; c < n.size(); ++c) {
      out[2 * c] = float(mean[c]);
      out[2 * c + 1] = n[c] > 0 ? float(m2[c] / n[c]) : 0.f;
    }
  }
};

}  // namespace falcon::ops::cpu
