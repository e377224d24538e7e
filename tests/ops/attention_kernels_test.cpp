// Attention at the sizes where the device kernels change strategy: many query rows across tiles
// (the flash prefill kernel), one or a few rows over thousands of keys (split-K decode), image
// blocks whose edges fall inside tiles, q_offset > 0 in both. F32 on every device (1e-5), BF16
// where the device computes in it (relative L2 1e-2 against the same bf16-rounded inputs).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "ops/attention.h"
#include "test_support.h"
#ifdef FALCON_HAS_CUDA
#include "ops/cuda_tuning.h"
#endif

namespace falcon {
namespace {

class AttentionKernelsTest : public ::testing::TestWithParam<Device> {};

// Dense softmax in double straight from the definition (the mask spelled out per key).
Tensor reference(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& sinks, const ops::AttentionMask& m) {
  const int64_t S = q.dim(0), H = q.dim(1), hd = q.dim(2), T = k.dim(0), K = v.dim(1);
  Tensor out = Tensor::zeros({S, H, hd}, DType::F32);
  const float* qd = q.data<float>();
  const float* kd = k.data<float>();
  const float* vd = v.data<float>();
  std::vector<double> s(static_cast<size_t>(T)), acc(static_cast<size_t>(hd));
  for (int64_t h = 0; h < H; ++h) {
    for (int64_t i = 0; i < S; ++i) {
      const int64_t p = m.q_offset + i;
      double mx = -INFINITY;
      for (int64_t j = 0; j < T; ++j) {
        const bool image = p >= m.image_begin && p < m.image_end && j >= m.image_begin && j < m.image_end;
        s[size_t(j)] = -INFINITY;
        if (!(j <= p || image)) continue;
        double d = 0;
        for (int64_t c = 0; c < hd; ++c) d += double(qd[(i * H + h) * hd + c]) * kd[(j * H + h) * hd + c];
        s[size_t(j)] = d / std::sqrt(double(hd));
        mx = std::max(mx, s[size_t(j)]);
      }
      double sum = 0;
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t j = 0; j < T; ++j) {
        if (s[size_t(j)] == -INFINITY) continue;
        const double e = std::exp(s[size_t(j)] - mx);
        sum += e;
        for (int64_t c = 0; c < hd; ++c) acc[size_t(c)] += e * vd[(j * K + h / (H / K)) * hd + c];
      }
      const double lse = mx + std::log(sum);
      const double gate = 1 / (1 + std::exp(-(lse - sinks.data<float>()[h])));
      for (int64_t c = 0; c < hd; ++c) out.data<float>()[(i * H + h) * hd + c] = float(acc[size_t(c)] / sum * gate);
    }
  }
  return out;
}

struct Case {
  int64_t S, q_offset, H, K, hd, img_begin, img_end;
  std::string what() const {
    return "S=" + std::to_string(S) + " off=" + std::to_string(q_offset) + " H=" + std::to_string(H) +
           " K=" + std::to_string(K) + " hd=" + std::to_string(hd) + " img=[" + std::to_string(img_begin) + "," +
           std::to_string(img_end) + ")";
  }
};

// Rounds to `dtype` and back, so the reference sees exactly the device's inputs.
Tensor rounded(const Tensor& x, DType dtype) { return test::to_cpu_f32(test::convert(x, dtype, Device::CPU)); }

// An output full of NaN: any element the kernel fails to write shows up in the error.
Tensor poisoned(const Shape& shape, DType dtype, Device dev) {
  Tensor t = Tensor::empty(shape, DType::F32);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = std::numeric_limits<float>::quiet_NaN();
  return test::convert(t, dtype, dev);
}

// The measured error goes to the log as well (docs/cuda.md quotes it), the bound to the EXPECT.
double report(const std::string& what, const Tensor& got, const Tensor& want) {
  double peak = 0;
  for (int64_t i = 0; i < want.numel(); ++i) peak = std::max(peak, double(std::fabs(want.data<float>()[i])));
  const double rel = test::rel_l2(got, want), mx = test::max_abs_diff(got, want) / (peak > 0 ? peak : 1);
  std::printf("[ error    ] %s: rel_l2 %.2e, max_abs/max|ref| %.2e\n", what.c_str(), rel, mx);
  return rel;
}

double run_case(Device dev, DType dtype, const Case& c, uint64_t seed) {
  const int64_t T = c.q_offset + c.S;
  Tensor q = rounded(test::random_tensor({c.S, c.H, c.hd}, seed, -2, 2), dtype);
  Tensor k = rounded(test::random_tensor({T, c.H, c.hd}, seed + 1, -2, 2), dtype);
  Tensor v = rounded(test::random_tensor({T, c.K, c.hd}, seed + 2), dtype);
  Tensor sinks = test::random_tensor({c.H}, seed + 3, -3, 3);
  const ops::AttentionMask mask{c.q_offset, c.img_begin, c.img_end};
  Tensor want = reference(q, k, v, sinks, mask);
  Tensor out = poisoned({c.S, c.H, c.hd}, dtype, dev);
  ops::attention(test::convert(q, dtype, dev), test::convert(k, dtype, dev), test::convert(v, dtype, dev),
                 sinks.to(dev), mask, out);
  return report(std::string("attention ") + device_name(dev) + " " + dtype_name(dtype) + " " + c.what(),
                test::to_cpu_f32(out), want);
}

bool computes_in(Device dev, DType dtype) { return dtype == DType::F32 || dev == Device::CUDA; }

// Long prompts through the prefill path: tiles of 64 keys and 64/128 query rows, image edges
// inside tiles, a block straddling the end of the image, q_offset > 0.
const Case kPrefillCases[] = {
    {200, 0, 4, 2, 128, 3, 150},   {300, 50, 2, 2, 64, 10, 250},  {129, 0, 2, 1, 128, 0, 0},
    {333, 0, 2, 1, 128, 0, 333},   {150, 0, 4, 1, 64, 70, 71},    {1100, 0, 2, 1, 128, 1, 1030},
};

// Decode and short chunks through the split-K path: one row over thousands of keys, a few rows,
// a chunk of rows just under the prefill threshold, head_dims the tensor cores do not take.
// One-row cases with head_dim 64/128 take the CUDA decode kernel: query heads per kv head 1
// (one head per block), 2 and 4 (pairs sharing V), 3 (odd: one head per block); T = 1.
const Case kDecodeCases[] = {
    {1, 3199, 16, 8, 128, 5, 3077}, {1, 2000, 4, 2, 64, 0, 0},  {7, 500, 4, 2, 128, 3, 480},
    {3, 900, 4, 4, 24, 1, 20},      {60, 700, 2, 1, 128, 5, 740}, {2, 1500, 8, 2, 32, 0, 0},
    {1, 0, 2, 1, 128, 0, 0},        {1, 1234, 4, 4, 128, 0, 0},   {1, 777, 8, 2, 128, 0, 0},
    {1, 1500, 6, 2, 64, 0, 0},      {1, 40, 16, 8, 64, 0, 0},
};

TEST_P(AttentionKernelsTest, PrefillMatchesReference) {
  const Device dev = GetParam();
  uint64_t seed = 100;
  for (const DType dtype : {DType::F32, DType::BF16}) {
    if (!computes_in(dev, dtype)) continue;
    for (const Case& c : kPrefillCases) {
      const double err = run_case(dev, dtype, c, seed += 4);
      EXPECT_LT(err, dtype == DType::F32 ? 1e-5 : 1e-2) << dtype_name(dtype) << " " << c.what();
    }
  }
}

#ifdef FALCON_HAS_CUDA
// Every prefill kernel variant the tuning can select (wgmma with 1 or 2 warpgroups, mma.sync
// shapes) computes the same function, whichever is the default.
TEST_P(AttentionKernelsTest, EveryCudaPrefillVariantMatches) {
  const Device dev = GetParam();
  if (dev != Device::CUDA) GTEST_SKIP() << "CUDA kernel variants";
  const ops::cuda::AttentionTuning saved = ops::cuda::attention_tuning();
  struct Variant {
    bool wgmma, lean;
    int groups, rows, bn, warps;
  };
  const Variant variants[] = {{true, false, 1, 16, 64, 4},  {true, true, 1, 16, 64, 4},
                              {true, false, 2, 16, 64, 4},  {false, false, 0, 16, 64, 4},
                              {false, false, 0, 16, 64, 8}, {false, false, 0, 32, 32, 4},
                              {false, false, 0, 32, 64, 4}};
  uint64_t seed = 900;
  for (const Variant& var : variants) {
    ops::cuda::AttentionTuning t = saved;
    t.flash_wgmma = var.wgmma;
    t.flash_wgmma_lean = var.lean;
    t.flash_warpgroups = var.groups;
    t.flash_rows_per_warp = var.rows;
    t.flash_block_n = var.bn;
    t.flash_warps = var.warps;
    ops::cuda::set_attention_tuning(t);
    for (const Case& c : kPrefillCases) {
      const double err = run_case(dev, DType::BF16, c, seed += 4);
      EXPECT_LT(err, 1e-2) << (var.wgmma ? (var.lean ? "wgmma lean" : "wgmma") : "mma") << " groups=" << var.groups << " rows=" << var.rows
                           << " bn=" << var.bn << " warps=" << var.warps << " " << c.what();
    }
  }
  ops::cuda::set_attention_tuning(saved);
}
#endif

TEST_P(AttentionKernelsTest, DecodeMatchesReference) {
  const Device dev = GetParam();
  uint64_t seed = 500;
  for (const DType dtype : {DType::F32, DType::BF16}) {
    if (!computes_in(dev, dtype)) continue;
    for (const Case& c : kDecodeCases) {
      const double err = run_case(dev, dtype, c, seed += 4);
      EXPECT_LT(err, dtype == DType::F32 ? 1e-5 : 1e-2) << dtype_name(dtype) << " " << c.what();
    }
  }
}

#ifdef FALCON_HAS_CUDA
// Every decode-kernel setting the tuning can select (warps, ring stages, split counts from one
// to the most the keys allow, global or cluster merges) and the general split kernel compute
// the same function.
TEST_P(AttentionKernelsTest, EveryCudaDecodeVariantMatches) {
  const Device dev = GetParam();
  if (dev != Device::CUDA) GTEST_SKIP() << "CUDA kernel variants";
  const ops::cuda::AttentionTuning saved = ops::cuda::attention_tuning();
  struct Variant {
    bool decode;
    int warps, stages, per_sm, cluster;
    bool pairs = true;
  };
  const Variant variants[] = {{false, 4, 4, 0, 0}, {true, 2, 2, 0, 0},  {true, 4, 3, 1, 0},  {true, 8, 4, 0, 0},
                              {true, 8, 8, 64, 0}, {true, 2, 6, 64, 0}, {true, 4, 4, 2, 0},  {true, 8, 2, 1, 16},
                              {true, 4, 4, 0, 8},  {true, 2, 3, 64, 16}, {true, 8, 4, 64, 3},
                              {true, 8, 2, 1, 8, false}};
  const Case cases[] = {{1, 3199, 16, 8, 128, 5, 3077}, {1, 2000, 4, 2, 64, 0, 0}, {1, 1234, 4, 4, 128, 0, 0},
                        {1, 5, 4, 4, 64, 0, 0}};
  uint64_t seed = 1900;
  for (const Variant& var : variants) {
    ops::cuda::AttentionTuning t = saved;
    t.decode_kernel = var.decode;
    t.decode_warps = var.warps;
    t.decode_stages = var.stages;
    t.decode_blocks_per_sm = var.per_sm;
    t.decode_cluster = var.cluster;
    t.decode_pairs = var.pairs;
    ops::cuda::set_attention_tuning(t);
    for (const DType dtype : {DType::F32, DType::BF16}) {
      for (const Case& c : cases) {
        const double err = run_case(dev, dtype, c, seed += 4);
        EXPECT_LT(err, dtype == DType::F32 ? 1e-5 : 1e-2)
            << dtype_name(dtype) << " decode=" << var.decode << " warps=" << var.warps << " stages=" << var.stages
            << " per_sm=" << var.per_sm << " cluster=" << var.cluster << " pairs=" << var.pairs << " " << c.what();
      }
    }
  }
  ops::cuda::set_attention_tuning(saved);
}
#endif

// Scores spread over hundreds (one key dominating, the sink near lse) must not overflow or lose
// the gate. The f32 rounding of such scores alone is ~1e-5 of the output, hence 1e-4 here.
TEST_P(AttentionKernelsTest, ExtremeScoresStayFinite) {
  const Device dev = GetParam();
  for (const DType dtype : {DType::F32, DType::BF16}) {
    if (!computes_in(dev, dtype)) continue;
    for (const int64_t S : {1, 130}) {
      const int64_t T = 300, H = 2, hd = 64, q_offset = T - S;
      Tensor q = rounded(test::random_tensor({S, H, hd}, 7, -8, 8), dtype);
      Tensor k = rounded(test::random_tensor({T, H, hd}, 8, -8, 8), dtype);
      Tensor v = rounded(test::random_tensor({T, 1, hd}, 9), dtype);
      Tensor sinks = test::random_tensor({H}, 10, 20, 30);
      const ops::AttentionMask mask{q_offset, 0, 0};
      Tensor want = reference(q, k, v, sinks, mask);
      Tensor out = poisoned({S, H, hd}, dtype, dev);
      ops::attention(test::convert(q, dtype, dev), test::convert(k, dtype, dev), test::convert(v, dtype, dev),
                     sinks.to(dev), mask, out);
      const double err = report(std::string("attention extreme ") + device_name(dev) + " " + dtype_name(dtype) +
                                    " S=" + std::to_string(S),
                                test::to_cpu_f32(out), want);
      EXPECT_LT(err, dtype == DType::F32 ? 1e-4 : 2e-2) << dtype_name(dtype) << " S=" << S;
    }
  }
}

FALCON_INSTANTIATE_DEVICE_TESTS(AttentionKernelsTest);

}  // namespace
}  // namespace falcon
