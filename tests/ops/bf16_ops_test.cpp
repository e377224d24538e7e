// The forward-pass ops with BF16 activations (the CUDA default), checked against the CPU's F32
// result on the same bf16-rounded inputs: relative L2 within 1e-2 (bf16 keeps 8 bits, ~4e-3 a
// rounding). Only devices that compute in BF16 run them (CUDA).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "ops/activation.h"
#include "ops/argmax.h"
#include "ops/convert.h"
#include "ops/embedding.h"
#include "ops/linear.h"
#include "ops/qk_norm_rope.h"
#include "ops/rms_norm.h"
#include "test_support.h"
#ifdef FALCON_HAS_CUDA
#include "ops/cuda_tuning.h"
#endif

namespace falcon {
namespace {

constexpr double kTol = 1e-2;

class Bf16OpsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!device_available(Device::CUDA)) GTEST_SKIP() << "no CUDA device";
  }
  static constexpr Device dev = Device::CUDA;
};

// Relative L2 error, also printed for docs/cuda.md.
double err(const char* what, const Tensor& got_device, const Tensor& want) {
  const double e = test::rel_l2(test::to_cpu_f32(got_device), want);
  std::printf("[ error    ] %s: rel_l2 %.2e\n", what, e);
  return e;
}

Tensor rounded(const Tensor& x) { return test::to_cpu_f32(test::convert(x, DType::BF16, Device::CPU)); }
Tensor to_bf16(const Tensor& cpu_f32) { return test::convert(cpu_f32, DType::BF16, Device::CUDA); }

TEST_F(Bf16OpsTest, RmsNorm) {
  for (const auto& [rows, n] : {std::pair<int64_t, int64_t>{37, 1024}, {1, 768}, {5, 30}}) {
    Tensor x = rounded(test::random_tensor({rows, n}, 1, -3, 3));
    Tensor w = test::random_tensor({n}, 2, 0.5, 1.5);
    for (const bool with_w : {false, true}) {
      Tensor want = Tensor::empty({rows, n}, DType::F32);
      ops::rms_norm(x, with_w ? &w : nullptr, 1e-5f, want);
      Tensor xd = to_bf16(x), wd = w.to(dev), out = Tensor::empty({rows, n}, DType::BF16, dev);
      ops::rms_norm(xd, with_w ? &wd : nullptr, 1e-5f, out);
      EXPECT_LT(err(("rms_norm bf16 " + std::to_string(rows) + "x" + std::to_string(n)).c_str(), out, want), kTol)
          << rows << "x" << n << " weight=" << with_w;
      ops::rms_norm(xd, with_w ? &wd : nullptr, 1e-5f, xd);  // in place
      EXPECT_LT(test::rel_l2(test::to_cpu_f32(xd), want), kTol) << "in place";
    }
  }
}

TEST_F(Bf16OpsTest, QkNormRope) {
  for (const int64_t hd : {128, 64}) {
    const int64_t S = 50, H = 16, K = 8;
    Tensor qkv = rounded(test::random_tensor({S, (H + 2 * K) * hd}, 3, -2, 2));
    Tensor golden = test::random_tensor({H, hd / 4, 2}, 4, -3, 3);
    Tensor pos_t = Tensor::empty({S}, DType::I32), pos_hw = Tensor::zeros({S, 2}, DType::F32);
    for (int64_t s = 0; s < S; ++s) {
      pos_t.data<int32_t>()[s] = int32_t(s < 5 ? s : 5) + (s > 40 ? int32_t(s) * 50 : 0);
      if (s >= 5 && s <= 40) {
        pos_hw.data<float>()[2 * s] = -1.f + 0.05f * float(s - 5);
        pos_hw.data<float>()[2 * s + 1] = 0.7f - 0.03f * float(s - 5);
      }
    }
    Tensor wq = Tensor::empty({S, H, hd}, DType::F32), wk = Tensor::empty({S, H, hd}, DType::F32);
    Tensor wv = Tensor::empty({S, K, hd}, DType::F32);
    ops::qk_norm_rope(qkv, pos_t, pos_hw, golden, 10000.f, 1.1920929e-7f, wq, wk, wv);
    Tensor q = Tensor::empty({S, H, hd}, DType::BF16, dev), k = Tensor::empty({S, H, hd}, DType::BF16, dev);
    Tensor v = Tensor::empty({S, K, hd}, DType::BF16, dev);
    ops::qk_norm_rope(to_bf16(qkv), pos_t.to(dev), pos_hw.to(dev), golden.to(dev), 10000.f, 1.1920929e-7f, q, k, v);
    EXPECT_LT(err(("qk_norm_rope bf16 q hd=" + std::to_string(hd)).c_str(), q, wq), kTol) << "hd=" << hd;
    EXPECT_LT(err(("qk_norm_rope bf16 k hd=" + std::to_string(hd)).c_str(), k, wk), kTol) << "hd=" << hd;
    EXPECT_EQ(test::max_abs_diff(test::to_cpu_f32(v), wv), 0.0) << "hd=" << hd;
    // The paged form (the decode step's) writes the same bf16 rows at reversed slots of a pool.
    Tensor slots = Tensor::empty({S}, DType::I32);
    for (int64_t s = 0; s < S; ++s) slots.data<int32_t>()[s] = int32_t(S - 1 - s);
    Tensor kc = Tensor::empty({S / 2, 2, H, hd}, DType::BF16, dev), vc = Tensor::empty({S / 2, 2, K, hd}, DType::BF16, dev);
    Tensor qp = Tensor::empty({S, H, hd}, DType::BF16, dev);
    ops::qk_norm_rope_paged(to_bf16(qkv), pos_t.to(dev), pos_hw.to(dev), golden.to(dev), 10000.f, 1.1920929e-7f, qp,
                            slots.to(dev), kc, vc);
    const Tensor kh = test::to_cpu_f32(k), kch = test::to_cpu_f32(kc);
    const Tensor vh = test::to_cpu_f32(v), vch = test::to_cpu_f32(vc);
    double worst = test::max_abs_diff(test::to_cpu_f32(qp), test::to_cpu_f32(q));
    for (int64_t s = 0; s < S; ++s) {
      for (int64_t c = 0; c < H * hd; ++c) {
        worst = std::max(worst, double(std::abs(kch.data<float>()[(S - 1 - s) * H * hd + c] - kh.data<float>()[s * H * hd + c])));
      }
      for (int64_t c = 0; c < K * hd; ++c) {
        worst = std::max(worst, double(std::abs(vch.data<float>()[(S - 1 - s) * K * hd + c] - vh.data<float>()[s * K * hd + c])));
      }
    }
    EXPECT_EQ(worst, 0.0) << "paged hd=" << hd;
    // A decode-sized call (a few rows) gives the rows the prefill-sized call gave.
    Tensor q4 = Tensor::empty({4, H, hd}, DType::BF16, dev), k4 = Tensor::empty({4, H, hd}, DType::BF16, dev);
    Tensor v4 = Tensor::empty({4, K, hd}, DType::BF16, dev);
    ops::qk_norm_rope(to_bf16(qkv.rows(40, 44).clone()), pos_t.rows(40, 44).clone().to(dev),
                      pos_hw.rows(40, 44).clone().to(dev), golden.to(dev), 10000.f, 1.1920929e-7f, q4, k4, v4);
    EXPECT_EQ(test::max_abs_diff(test::to_cpu_f32(q4), test::to_cpu_f32(q).rows(40, 44).clone()), 0.0) << hd;
    EXPECT_EQ(test::max_abs_diff(test::to_cpu_f32(k4), test::to_cpu_f32(k).rows(40, 44).clone()), 0.0) << hd;
  }
}

TEST_F(Bf16OpsTest, SquaredReluAndGate) {
  Tensor a = rounded(test::random_tensor({33, 2 * 3072}, 5, -20, 20));  // squares reach 400 * 20
  Tensor want = Tensor::empty({33, 3072}, DType::F32);
  ops::squared_relu_gate(a, want);
  Tensor out = Tensor::empty({33, 3072}, DType::BF16, dev);
  ops::squared_relu_gate(to_bf16(a), out);
  EXPECT_LT(err("squared_relu_gate bf16", out, want), kTol);

  Tensor x = rounded(test::random_tensor({7, 301}, 6, -300, 300));  // odd size: the scalar path
  Tensor want2 = Tensor::empty({7, 301}, DType::F32);
  ops::squared_relu(x, want2);
  Tensor xd = to_bf16(x);
  ops::squared_relu(xd, xd);
  EXPECT_LT(err("squared_relu bf16", xd, want2), kTol);
}

TEST_F(Bf16OpsTest, AddConvertEmbeddingArgmax) {
  Tensor a = rounded(test::random_tensor({64, 1024}, 7)), b = rounded(test::random_tensor({64, 1024}, 8));
  Tensor sum = to_bf16(a);
  ops::add(sum, to_bf16(b), sum);
  Tensor got = test::to_cpu_f32(sum);
  for (int64_t i = 0; i < got.numel(); ++i) {
    ASSERT_EQ(got.data<float>()[i], bf16_to_f32(f32_to_bf16(a.data<float>()[i] + b.data<float>()[i]))) << i;
  }

  Tensor x = test::random_tensor({3, 333}, 9, -70000, 70000);
  Tensor h = Tensor::empty({3, 333}, DType::F16, dev), back = Tensor::empty({3, 333}, DType::F32, dev);
  ops::convert(x.to(dev), h);
  ops::convert(h, back);
  Tensor hb = back.to(Device::CPU);
  for (int64_t i = 0; i < x.numel(); ++i) {
    ASSERT_EQ(hb.data<float>()[i], f16_to_f32(f32_to_f16(x.data<float>()[i]))) << i;  // inf beyond 65504
  }

  Tensor table = test::random_tensor({100, 64}, 10);
  Tensor ids = Tensor::empty({3}, DType::I32);
  ids.data<int32_t>()[0] = 99;
  ids.data<int32_t>()[1] = 0;
  ids.data<int32_t>()[2] = 42;
  Tensor emb = Tensor::empty({3, 64}, DType::BF16, dev);
  ops::embedding(table.to(dev), ids.to(dev), emb);
  Tensor e = test::to_cpu_f32(emb);
  for (int64_t s = 0; s < 3; ++s) {
    for (int64_t j = 0; j < 64; ++j) {
      ASSERT_EQ(e.data<float>()[s * 64 + j], bf16_to_f32(f32_to_bf16(table.data<float>()[ids.data<int32_t>()[s] * 64 + j])));
    }
  }

  Tensor logits = test::random_tensor({3, 65536}, 11, -5, 5);
  logits.data<float>()[12345] = 9.f;
  logits.data<float>()[65536 + 65535] = 9.f;
  logits.data<float>()[2 * 65536 + 7] = 9.f;
  logits.data<float>()[2 * 65536 + 8] = 9.f;  // tie: the first wins
  Tensor idx = Tensor::empty({3}, DType::I32, dev);
  ops::argmax(to_bf16(logits), idx);
  Tensor ih = idx.to(Device::CPU);
  EXPECT_EQ(ih.data<int32_t>()[0], 12345);
  EXPECT_EQ(ih.data<int32_t>()[1], 65535);
  EXPECT_EQ(ih.data<int32_t>()[2], 7);
}

// BF16 activations against every weight storage the engine uses on the GPU; the CPU computes the
// same product in f32 from the same weights (prepared from the same file values).
TEST_F(Bf16OpsTest, Linear) {
  struct Case {
    int64_t m, n, k;
    bool bias, accumulate;
  };
  // The GEMV holds a row of up to 4, 8 or 16 steps of 256 in registers, or streams it (K = 4352):
  // every size class, ragged last steps (K = 768, 1056) and 1 to 7 rows. Q8/Q4 above 8 rows run
  // cuBLASLt on expanded weights (LinearTuning::expand_min_rows).
  const Case cases[] = {{1, 3072, 1024, false, false}, {7, 1024, 1024, true, true}, {64, 2304, 768, true, false},
                        {300, 96, 1024, false, true},  {500, 512, 256, true, true},   {1, 1024, 2048, true, true},
                        {2, 512, 3072, false, true},   {4, 64, 4352, true, false},   {3, 40, 1056, false, false},
                        {12, 200, 512, true, true}};
  uint64_t seed = 20;
#ifdef FALCON_HAS_CUDA
  // BF16 weights at decode sizes: both the GEMV and cuBLASLt, whichever the default is.
  const ops::cuda::LinearTuning saved = ops::cuda::linear_tuning();
  for (const int gemv_rows : {0, 8}) {
    ops::cuda::LinearTuning t = saved;
    t.gemv_max_rows = gemv_rows;
    ops::cuda::set_linear_tuning(t);
    for (const Case& c : cases) {
      if (c.m > 8) continue;
      Tensor x = rounded(test::random_tensor({c.m, c.k}, seed += 4, -1, 1));
      Tensor w = test::random_tensor({c.n, c.k}, seed + 1, -0.1f, 0.1f);
      Tensor b = test::random_tensor({c.n}, seed + 2, -1, 1);
      Tensor want = Tensor::zeros({c.m, c.n}, DType::F32);
      ops::linear(x, ops::prepare_linear_weight(w, DType::BF16, Device::CPU), c.bias ? &b : nullptr, want, false);
      Tensor y = Tensor::zeros({c.m, c.n}, DType::BF16, dev), bd = b.to(dev);
      ops::linear(to_bf16(x), ops::prepare_linear_weight(w, DType::BF16, dev), c.bias ? &bd : nullptr, y, false);
      const std::string what = std::string("linear bf16 x BF16 ") + (gemv_rows ? "gemv" : "cublasLt") +
                               " M=" + std::to_string(c.m) + " N=" + std::to_string(c.n);
      EXPECT_LT(err(what.c_str(), y, want), kTol);
    }
  }
  ops::cuda::set_linear_tuning(saved);
#endif
  for (const DType wdt : {DType::BF16, DType::Q8, DType::Q4}) {
    for (const Case& c : cases) {
      SCOPED_TRACE(std::string(dtype_name(wdt)) + " M=" + std::to_string(c.m) + " N=" + std::to_string(c.n) +
                   " K=" + std::to_string(c.k));
      Tensor x = rounded(test::random_tensor({c.m, c.k}, seed += 4, -1, 1));
      Tensor w = test::random_tensor({c.n, c.k}, seed + 1, -0.1f, 0.1f);
      Tensor b = test::random_tensor({c.n}, seed + 2, -1, 1);
      Tensor y0 = rounded(test::random_tensor({c.m, c.n}, seed + 3, -1, 1));
      Tensor want = c.accumulate ? y0.clone() : Tensor::zeros({c.m, c.n}, DType::F32);
      ops::linear(x, ops::prepare_linear_weight(w, wdt, Device::CPU), c.bias ? &b : nullptr, want, c.accumulate);
      Tensor y = c.accumulate ? to_bf16(y0) : Tensor::zeros({c.m, c.n}, DType::BF16, dev);
      Tensor bd = b.to(dev);
      ops::linear(to_bf16(x), ops::prepare_linear_weight(w, wdt, dev), c.bias ? &bd : nullptr, y, c.accumulate);
      const std::string what = std::string("linear bf16 x ") + dtype_name(wdt) + " M=" + std::to_string(c.m) +
                               " N=" + std::to_string(c.n) + " K=" + std::to_string(c.k);
      EXPECT_LT(err(what.c_str(), y, want), kTol);
    }
  }
}

#ifdef FALCON_HAS_CUDA
// Where the GEMVs let the next kernel launch (LinearTuning::gemv_early_trigger), whether the
// transformed inputs are staged per block (gemv_stage_gate, gemv_stage_norm) and the down
// product's register budget (gemv_two_blocks) change no bit: the plain GEMV on BF16 and Q4
// weights and the fused one with each prologue.
TEST_F(Bf16OpsTest, GemvTriggerPlacementKeepsResults) {
  const ops::cuda::LinearTuning saved = ops::cuda::linear_tuning();
  const int64_t m = 1, n = 1024, k = 3072;
  const Tensor x = to_bf16(test::random_tensor({m, 2 * k}, 501, -2, 2));
  const Tensor xk = to_bf16(test::random_tensor({m, k}, 502, -2, 2));
  const Tensor w = test::random_tensor({n, k}, 503, -0.1f, 0.1f);
  // (early trigger, staged gate, staged norm, two blocks per SM for 9-12 steps), each against
  // the first.
  const bool settings[][4] = {{true, true, false, false},
                              {false, true, false, false},
                              {true, false, false, false},
                              {true, true, true, false},
                              {true, true, true, true}};
  std::vector<Tensor> results[5];
  for (int i = 0; i < 5; ++i) {
    ops::cuda::LinearTuning t = saved;
    t.gemv_early_trigger = settings[i][0];
    t.gemv_stage_gate = settings[i][1];
    t.gemv_stage_norm = settings[i][2];
    t.gemv_two_blocks = settings[i][3];
    ops::cuda::set_linear_tuning(t);
    for (const DType wdt : {DType::BF16, DType::Q4}) {
      const Tensor wd = ops::prepare_linear_weight(w, wdt, dev);
      Tensor y = Tensor::zeros({m, n}, DType::BF16, dev), scratch = Tensor::empty({m, k}, DType::BF16, dev);
      ops::linear(xk, wd, nullptr, y, false);
      results[i].push_back(test::to_cpu_f32(y));
      ops::linear(xk, wd, nullptr, y, true, {ops::LinearPrologue::Kind::RmsNorm, 1e-6f, &scratch});
      results[i].push_back(test::to_cpu_f32(y));
      ops::linear(x, wd, nullptr, y, true, {ops::LinearPrologue::Kind::SquaredReluGate, 0.f, &scratch});
      results[i].push_back(test::to_cpu_f32(y));
    }
  }
  ops::cuda::set_linear_tuning(saved);
  for (int s = 1; s < 5; ++s) {
    ASSERT_EQ(results[0].size(), results[s].size());
    for (size_t i = 0; i < results[0].size(); ++i) {
      EXPECT_EQ(test::max_abs_diff(results[0][i], results[s][i]), 0.0) << "setting " << s << ", product " << i;
    }
  }
  for (size_t i = 0; i < results[0].size(); ++i) {
    EXPECT_GT(test::max_abs_diff(results[0][i], Tensor::zeros({m, n}, DType::F32)), 0.0) << "product " << i;
  }
}
#endif

// The decode GEMV with its input transform folded in (rms_norm before wqkv/w13, the squared-ReLU
// gate before w2), at the model's shapes and at odd ones, against the CPU's unfused F32 pair on
// the same rounded inputs; and against the unfused pair on the device. On CUDA also with the
// transformed inputs computed in every warp and staged per block (LinearTuning::gemv_stage_*).
void expect_linear_prologues(Device dev);

TEST_F(Bf16OpsTest, LinearPrologues) {
#ifdef FALCON_HAS_CUDA
  const ops::cuda::LinearTuning saved = ops::cuda::linear_tuning();
  for (const bool staged : {false, true}) {
    ops::cuda::LinearTuning t = saved;
    t.gemv_stage_gate = t.gemv_stage_norm = staged;
    ops::cuda::set_linear_tuning(t);
    expect_linear_prologues(dev);
  }
  ops::cuda::set_linear_tuning(saved);
#else
  expect_linear_prologues(dev);
#endif
}

void expect_linear_prologues(Device dev) {
  struct Case {
    int64_t m, n, k;
    bool bias, accumulate;
  };
  const Case cases[] = {{1, 4096, 1024, false, false}, {1, 1024, 3072, false, true}, {1, 1024, 2048, true, true},
                        {2, 6144, 1024, false, false}, {3, 33, 1024, true, true},    {4, 100, 520, false, true},
                        {1, 7, 8, true, false},        {7, 300, 256, true, true},    {2, 48, 4608, true, true}};
  uint64_t seed = 90;
  for (const auto kind : {ops::LinearPrologue::Kind::RmsNorm, ops::LinearPrologue::Kind::SquaredReluGate}) {
    const bool gate = kind == ops::LinearPrologue::Kind::SquaredReluGate;
    for (const Case& c : cases) {
      const int64_t xk = gate ? 2 * c.k : c.k;
      Tensor x = rounded(test::random_tensor({c.m, xk}, seed += 4, gate ? -2 : -3, gate ? 2 : 3));
      Tensor w = test::random_tensor({c.n, c.k}, seed + 1, -0.1f, 0.1f);
      Tensor b = test::random_tensor({c.n}, seed + 2, -1, 1);
      Tensor y0 = rounded(test::random_tensor({c.m, c.n}, seed + 3, -1, 1));
      // CPU: the transform in f32, rounded to bf16 as the device stores it, then the product.
      Tensor t = Tensor::empty({c.m, c.k}, DType::F32);
      if (gate) {
        ops::squared_relu_gate(x, t);
      } else {
        ops::rms_norm(x, nullptr, 1.1920929e-7f, t);
      }
      Tensor want = c.accumulate ? y0.clone() : Tensor::zeros({c.m, c.n}, DType::F32);
      ops::linear(rounded(t), ops::prepare_linear_weight(w, DType::BF16, Device::CPU), c.bias ? &b : nullptr, want,
                  c.accumulate);
      Tensor wd = ops::prepare_linear_weight(w, DType::BF16, dev), bd = b.to(dev), xd = to_bf16(x);
      Tensor scratch = Tensor::empty({c.m, c.k}, DType::BF16, dev);
      Tensor y = c.accumulate ? to_bf16(y0) : Tensor::zeros({c.m, c.n}, DType::BF16, dev);
      ops::linear(xd, wd, c.bias ? &bd : nullptr, y, c.accumulate, {kind, 1.1920929e-7f, &scratch});
      const std::string what = std::string("linear bf16 prologue ") + (gate ? "gate" : "rms_norm") +
                               " M=" + std::to_string(c.m) + " N=" + std::to_string(c.n) + " K=" + std::to_string(c.k);
      EXPECT_LT(err(what.c_str(), y, want), kTol);
      // The unfused pair on the device: the same rounded transform, so only sum order differs.
      Tensor y2 = c.accumulate ? to_bf16(y0) : Tensor::zeros({c.m, c.n}, DType::BF16, dev);
      if (gate) {
        ops::squared_relu_gate(xd, scratch);
      } else {
        ops::rms_norm(xd, nullptr, 1.1920929e-7f, scratch);
      }
      ops::linear(scratch, wd, c.bias ? &bd : nullptr, y2, c.accumulate);
      EXPECT_LT(test::rel_l2(test::to_cpu_f32(y), test::to_cpu_f32(y2)), 4e-3) << what << " vs unfused";
    }
  }
}

}  // namespace
}  // namespace falcon
