#include "ops/paged_attention_qkv.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <vector>

#include "ops/qk_norm_rope.h"
#include "rope_reference.h"
#include "test_support.h"
#ifdef FALCON_HAS_CUDA
#include "ops/cuda_tuning.h"
#endif

namespace falcon {
namespace {

class PagedAttentionQkvTest : public ::testing::TestWithParam<Device> {};

Tensor rounded(const Tensor& x, DType dtype) { return test::to_cpu_f32(test::convert(x, dtype, Device::CPU)); }

struct Case {
  std::vector<int32_t> lens;  // keys after the step, the step's own included (0: padding row)
  int64_t H, K, hd, block_size;
};

struct Errors {
  double out, newest_k, pool;  // rel L2 of the output and of the written keys; max |diff| elsewhere
};

// Pool of random keys in shuffled blocks; each row's newest position holds a sentinel that the
// op must overwrite. The reference builds q and the newest key from qkv in double, attends over
// the row's keys in double, and expects the pool unchanged but for the newest keys and values.
Errors run_case(Device dev, DType dtype, const Case& c, uint64_t seed) {
  const int64_t B = int64_t(c.lens.size()), H = c.H, K = c.K, hd = c.hd, bs = c.block_size, G = H / K;
  const float theta = 10000.f, eps = 1.1920929e-7f;
  int64_t max_blocks = 1, total = 0;
  for (const int32_t n : c.lens) {
    max_blocks = std::max<int64_t>(max_blocks, (n + bs - 1) / bs);
    total += (n + bs - 1) / bs;
  }
  const int64_t num_blocks = total + 2;
  std::vector<int32_t> order(static_cast<size_t>(num_blocks));
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937(unsigned(seed)));
  Tensor table = Tensor::empty({B, max_blocks}, DType::I32), lens = Tensor::empty({B}, DType::I32);
  std::fill(table.data<int32_t>(), table.data<int32_t>() + table.numel(), -1);
  Tensor pos_t = Tensor::empty({B}, DType::I32), pos_hw = Tensor::zeros({B, 2}, DType::F32);
  Tensor kc = rounded(test::random_tensor({num_blocks, bs, H, hd}, seed + 1, -2, 2), dtype);
  Tensor vc = rounded(test::random_tensor({num_blocks, bs, K, hd}, seed + 2), dtype);
  const Tensor qkv = rounded(test::random_tensor({B, (H + 2 * K) * hd}, seed + 3, -2, 2), dtype);
  const Tensor golden = test::random_tensor({H, hd / 4, 2}, seed + 4, -3, 3);
  const Tensor sinks = test::random_tensor({H}, seed + 5, -3, 3);
  size_t next = 0;
  std::vector<int64_t> newest_slot(size_t(B), -1);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t n = c.lens[size_t(b)];
    lens.data<int32_t>()[b] = int32_t(n);
    for (int64_t i = 0; i < (n + bs - 1) / bs; ++i) table.data<int32_t>()[b * max_blocks + i] = order[next++];
    pos_t.data<int32_t>()[b] = int32_t(n + 40);
    if (b % 2 == 1) {  // some rows with a 2-D position too
      pos_hw.data<float>()[2 * b] = 0.3f * float(b);
      pos_hw.data<float>()[2 * b + 1] = -0.7f;
    }
    if (n > 0) {
      newest_slot[size_t(b)] = table.data<int32_t>()[b * max_blocks + (n - 1) / bs] * bs + (n - 1) % bs;
      std::fill_n(kc.data<float>() + newest_slot[size_t(b)] * H * hd, H * hd, 1e4f);
      std::fill_n(vc.data<float>() + newest_slot[size_t(b)] * K * hd, K * hd, 1e4f);
    }
  }

  // Reference: the expected pool and output.
  Tensor want_kc = kc.clone(), want_vc = vc.clone();
  Tensor want_out = Tensor::zeros({B, H, hd}, DType::F32);
  const int64_t row = (H + 2 * K) * hd;
  std::vector<double> q(static_cast<size_t>(H * hd)), kn(static_cast<size_t>(hd));
  for (int64_t b = 0; b < B; ++b) {
    const int64_t n = c.lens[size_t(b)];
    if (n == 0) continue;
    const float* in = qkv.data<float>() + b * row;
    const float pt = float(pos_t.data<int32_t>()[b]), ph = pos_hw.data<float>()[2 * b], pw = pos_hw.data<float>()[2 * b + 1];
    const int64_t slot = newest_slot[size_t(b)];
    for (int64_t h = 0; h < H; ++h) {
      const float* gh = golden.data<float>() + h * (hd / 4) * 2;
      test::reference_norm_rope(in + h * hd, hd, pt, ph, pw, gh, theta, eps, q.data() + h * hd);
      test::reference_norm_rope(in + (H + h / G) * hd, hd, pt, ph, pw, gh, theta, eps, kn.data());
      for (int64_t d = 0; d < hd; ++d) want_kc.data<float>()[(slot * H + h) * hd + d] = float(kn[size_t(d)]);
    }
    std::copy_n(in + (H + K) * hd, K * hd, want_vc.data<float>() + slot * K * hd);
    for (int64_t h = 0; h < H; ++h) {
      std::vector<double> s(static_cast<size_t>(n));
      double mx = -INFINITY;
      for (int64_t j = 0; j < n; ++j) {
        const int64_t r = table.data<int32_t>()[b * max_blocks + j / bs] * bs + j % bs;
        double d = 0;
        for (int64_t e = 0; e < hd; ++e) d += q[size_t(h * hd + e)] * want_kc.data<float>()[(r * H + h) * hd + e];
        s[size_t(j)] = d / std::sqrt(double(hd));
        mx = std::max(mx, s[size_t(j)]);
      }
      double sum = 0;
      for (double& e : s) sum += (e = std::exp(e - mx));
      const double gate = 1 / (1 + std::exp(-(mx + std::log(sum) - sinks.data<float>()[h])));
      for (int64_t e = 0; e < hd; ++e) {
        double acc = 0;
        for (int64_t j = 0; j < n; ++j) {
          const int64_t r = table.data<int32_t>()[b * max_blocks + j / bs] * bs + j % bs;
          acc += s[size_t(j)] * want_vc.data<float>()[(r * K + h / G) * hd + e];
        }
        want_out.data<float>()[(b * H + h) * hd + e] = float(acc / sum * gate);
      }
    }
  }

  Tensor dkc = test::convert(kc, dtype, dev), dvc = test::convert(vc, dtype, dev);
  Tensor out = test::convert(test::random_tensor({B, H, hd}, 99, 1e30f, 2e30f), dtype, dev);
  ops::paged_attention_qkv(test::convert(qkv, dtype, dev), pos_t.to(dev), pos_hw.to(dev), golden.to(dev), theta, eps,
                           dkc, dvc, table.to(dev), lens.to(dev), sinks.to(dev), out);
  Tensor got_kc = test::to_cpu_f32(dkc);
  const Tensor got_vc = test::to_cpu_f32(dvc);
  Errors e{test::rel_l2(test::to_cpu_f32(out), want_out), 0.0, 0.0};
  // The newest keys (compared as one vector), then every other element of the pools exactly.
  std::vector<float> got_new, want_new;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t slot = newest_slot[size_t(b)];
    if (slot < 0) continue;
    got_new.insert(got_new.end(), got_kc.data<float>() + slot * H * hd, got_kc.data<float>() + (slot + 1) * H * hd);
    want_new.insert(want_new.end(), want_kc.data<float>() + slot * H * hd, want_kc.data<float>() + (slot + 1) * H * hd);
    std::copy_n(want_kc.data<float>() + slot * H * hd, H * hd, got_kc.data<float>() + slot * H * hd);
  }
  double num = 0, den = 0;
  for (size_t i = 0; i < got_new.size(); ++i) {
    num += double(got_new[i] - want_new[i]) * (got_new[i] - want_new[i]);
    den += double(want_new[i]) * want_new[i];
  }
  e.newest_k = den > 0 ? std::sqrt(num / den) : 0.0;
  e.pool = std::max(test::max_abs_diff(got_kc, want_kc), test::max_abs_diff(got_vc, want_vc));
  return e;
}

std::vector<Case> cases() {
  std::vector<Case> all = {
      {{3100}, 16, 8, 128, 16},                    // the 0.6B model's decode step at batch 1
      {{1, 17, 300, 0, 1230}, 16, 8, 64, 16},      // OCR's head_dim, a padding row, a one-key row
      {{900, 3}, 8, 8, 64, 16},                    // one query head per kv head
      {{250, 600, 33}, 8, 2, 128, 24},             // four heads per kv head; blocks of 24 keys
      {{40, 7}, 4, 2, 32, 8},                      // head_dim 32: the two-kernel path on CUDA
  };
  Case many{{}, 16, 8, 128, 16};  // rows enough to fill the SMs: the ring, not the staged split
  for (int i = 0; i < 40; ++i) many.lens.push_back(i == 7 ? 0 : 1 + (i * 53) % 300);
  all.push_back(many);
  return all;
}

void expect_case(Device dev, DType dtype, const Case& c, uint64_t seed, const char* what) {
  const Errors e = run_case(dev, dtype, c, seed);
  std::printf("[ error    ] paged_attention_qkv %s %s %s B=%zu hd=%lld: out %.2e, newest keys %.2e, pool %.1e\n",
              device_name(dev), dtype_name(dtype), what, c.lens.size(), (long long)c.hd, e.out, e.newest_k, e.pool);
  const bool f32 = dtype == DType::F32;
  EXPECT_LT(e.out, f32 ? 1e-5 : 1e-2) << what << " " << dtype_name(dtype) << " B=" << c.lens.size() << " hd=" << c.hd;
  EXPECT_LT(e.newest_k, f32 ? 2e-6 : 5e-3) << what << " " << dtype_name(dtype) << " hd=" << c.hd;
  EXPECT_EQ(e.pool, 0.0) << what << " " << dtype_name(dtype) << " hd=" << c.hd;
}

TEST_P(PagedAttentionQkvTest, MatchesTheReference) {
  const Device dev = GetParam();
  uint64_t seed = 1;
  for (const DType dtype : {DType::F32, DType::BF16}) {
    if (dtype != DType::F32 && dev == Device::CPU) continue;
    for (const Case& c : cases()) expect_case(dev, dtype, c, seed += 100, "default");
  }
}

#ifdef FALCON_HAS_CUDA
// The fused kernel under each decode setting (staged split or ring, splits per SM, single heads,
// warps) and the two-kernel path (the input stage finding each row's slot in the table) agree
// with the reference.
TEST_P(PagedAttentionQkvTest, EveryCudaVariantMatches) {
  const Device dev = GetParam();
  if (dev != Device::CUDA) GTEST_SKIP() << "CUDA kernel variants";
  const ops::cuda::AttentionTuning saved = ops::cuda::attention_tuning();
  struct Variant {
    const char* name;
    int fused;  // AttentionTuning::decode_fused_input
    bool decode;
    int stage_all, per_sm, warps;
    bool pairs;
    bool early_trigger = true;
  };
  const Variant variants[] = {{"two kernels", 0, true, -1, 0, 0, true},
                              {"two kernels, wo launched after the keys", 0, true, -1, 0, 0, true, false},
                              {"two kernels, ring", 0, true, 0, 0, 0, true},
                              {"split kernel", 1, false, -1, 0, 0, true},
                              {"fused, staged", 1, true, -1, 0, 0, true},
                              {"fused, ring", 1, true, 0, 0, 0, true},
                              {"fused, staged, 2 per SM", 1, true, -1, 2, 0, true},
                              {"fused, ring, 4 warps, 64 per SM", 1, true, 0, 64, 4, true},
                              {"fused, single heads", 1, true, -1, 0, 0, false},
                              {"fused, ring, single heads, 2 warps", 1, true, 0, 0, 2, false}};
  const std::vector<Case> all = cases();
  uint64_t seed = 5000;
  for (const Variant& v : variants) {
    ops::cuda::AttentionTuning t = saved;
    t.decode_fused_input = v.fused;
    t.decode_kernel = v.decode;
    t.decode_stage_all = v.stage_all;
    t.decode_blocks_per_sm = v.per_sm;
    t.decode_warps = v.warps;
    t.decode_pairs = v.pairs;
    t.decode_early_trigger = v.early_trigger;
    ops::cuda::set_attention_tuning(t);
    for (const DType dtype : {DType::F32, DType::BF16}) {
      for (size_t i = 0; i < 4; ++i) expect_case(dev, dtype, all[i], seed += 100, v.name);
      expect_case(dev, dtype, all.back(), seed += 100, v.name);
    }
  }
  ops::cuda::set_attention_tuning(saved);
}
#endif

// The CPU checks the block for each newest key (CUDA cannot without a round trip: there a
// missing block masks the key and nothing is written).
TEST(PagedAttentionQkvCpu, RejectsAMissingNewestBlock) {
  const int64_t H = 2, K = 1, hd = 8, bs = 4;
  Tensor kc = Tensor::zeros({2, bs, H, hd}, DType::F32), vc = Tensor::zeros({2, bs, K, hd}, DType::F32);
  Tensor qkv = Tensor::zeros({1, (H + 2 * K) * hd}, DType::F32), out = Tensor::zeros({1, H, hd}, DType::F32);
  Tensor pos_t = Tensor::zeros({1}, DType::I32), pos_hw = Tensor::zeros({1, 2}, DType::F32);
  Tensor golden = Tensor::zeros({H, hd / 4, 2}, DType::F32), sinks = Tensor::zeros({H}, DType::F32);
  Tensor table = Tensor::empty({1, 2}, DType::I32), lens = Tensor::empty({1}, DType::I32);
  table.data<int32_t>()[0] = 0;
  table.data<int32_t>()[1] = -1;  // no block for positions 4..7
  lens.data<int32_t>()[0] = 6;
  EXPECT_THROW(ops::paged_attention_qkv(qkv, pos_t, pos_hw, golden, 10000.f, 1e-6f, kc, vc, table, lens, sinks, out),
               InvalidArgument);
  lens.data<int32_t>()[0] = 9;  // past the table
  EXPECT_THROW(ops::paged_attention_qkv(qkv, pos_t, pos_hw, golden, 10000.f, 1e-6f, kc, vc, table, lens, sinks, out),
               InvalidArgument);
  Tensor bad_qkv = Tensor::zeros({1, (H + 2 * K) * hd + 1}, DType::F32);
  lens.data<int32_t>()[0] = 3;
  EXPECT_THROW(
      ops::paged_attention_qkv(bad_qkv, pos_t, pos_hw, golden, 10000.f, 1e-6f, kc, vc, table, lens, sinks, out),
      InvalidArgument);
  ops::paged_attention_qkv(qkv, pos_t, pos_hw, golden, 10000.f, 1e-6f, kc, vc, table, lens, sinks, out);
}

FALCON_INSTANTIATE_DEVICE_TESTS(PagedAttentionQkvTest);

}  // namespace
}  // namespace falcon
