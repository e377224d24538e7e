#include "ops/linear.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "core/parallel.h"
#include "ops/activation.h"
#include "ops/rms_norm.h"
#include "ops/packed_weight.h"
#include "ops/quantize.h"
#include "test_support.h"
#ifdef FALCON_HAS_CUDA
#include "ops/cuda_tuning.h"
#endif

namespace falcon {
namespace {

class LinearTest : public ::testing::TestWithParam<Device> {};

const DType kWeightDtypes[] = {DType::F32, DType::BF16, DType::F16, DType::Q8, DType::Q4};

// The values a weight stored as `dtype` stands for, computed from the definitions alone (dtype.h
// roundings, quantize.h blocks), independent of any device layout.
Tensor dequantized(const Tensor& w, DType dtype) {
  const int64_t n = w.dim(0), k = w.dim(1);
  Tensor out = Tensor::empty({n, k}, DType::F32);
  const float* s = w.data<float>();
  float* o = out.data<float>();
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t b = 0; b < k; b += ops::kQuantBlock) {
      const float* src = s + r * k + b;
      float* dst = o + r * k + b;
      const int64_t len = std::min<int64_t>(ops::kQuantBlock, k - b);
      if (dtype == DType::Q8 || dtype == DType::Q4) {
        int8_t q[ops::kQuantBlock];
        const float scale = dtype == DType::Q8 ? ops::quantize_block_q8(src, q) : ops::quantize_block_q4(src, q);
        for (int i = 0; i < ops::kQuantBlock; ++i) dst[i] = float(q[i]) * scale;
      } else {
        for (int64_t i = 0; i < len; ++i) {
          dst[i] = dtype == DType::BF16 ? bf16_to_f32(f32_to_bf16(src[i]))
                   : dtype == DType::F16 ? f16_to_f32(f32_to_f16(src[i]))
                                         : src[i];
        }
      }
    }
  }
  return out;
}

struct Reference {
  Tensor y;    // x . w^T (+ bias) (+ y0), in double, rounded to f32 at the end
  Tensor mag;  // sum_k |x w| + |bias| + |y0| per element: the scale of its rounding error
};

Reference reference(const Tensor& x, const Tensor& w, const Tensor* bias, const Tensor* y0) {
  const int64_t m = x.dim(0), k = x.dim(1), n = w.dim(0);
  Reference r{Tensor::empty({m, n}, DType::F32), Tensor::empty({m, n}, DType::F32)};
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double acc = 0, mag = 0;
      for (int64_t l = 0; l < k; ++l) {
        const double p = double(x.data<float>()[i * k + l]) * w.data<float>()[j * k + l];
        acc += p;
        mag += std::fabs(p);
      }
      if (bias) {
        acc += bias->data<float>()[j];
        mag += std::fabs(bias->data<float>()[j]);
      }
      if (y0) {
        acc += y0->data<float>()[i * n + j];
        mag += std::fabs(y0->data<float>()[i * n + j]);
      }
      r.y.data<float>()[i * n + j] = float(acc);
      r.mag.data<float>()[i * n + j] = float(mag);
    }
  }
  return r;
}

// Every element within f32 accumulation error of the reference: |err| <= 4 eps sqrt(K) * mag
// (the random-walk bound with margin; a wrong weight or a lost term is orders above it).
void expect_close(const Tensor& got, const Reference& want, int64_t k, const std::string& what) {
  const double tol = 4 * std::numeric_limits<float>::epsilon() * std::sqrt(double(std::max<int64_t>(k, 1)) + 1);
  int bad = 0;
  for (int64_t i = 0; i < got.numel() && bad < 5; ++i) {
    const double err = std::fabs(double(got.data<float>()[i]) - want.y.data<float>()[i]);
    if (!(err <= tol * want.mag.data<float>()[i] + 1e-30)) {
      ADD_FAILURE() << what << ": element " << i << " got " << got.data<float>()[i] << " want "
                    << want.y.data<float>()[i] << " (err " << err << ", allowed " << tol * want.mag.data<float>()[i]
                    << ")";
      ++bad;
    }
  }
}

struct Case {
  int64_t m, n, k;
  bool bias, accumulate;
};

std::string describe(DType dt, const Case& c) {
  return std::string(dtype_name(dt)) + " M=" + std::to_string(c.m) + " N=" + std::to_string(c.n) +
         " K=" + std::to_string(c.k) + (c.bias ? " bias" : "") + (c.accumulate ? " accumulate" : "");
}

void run_case(Device dev, DType dt, const Case& c, uint64_t seed) {
  const std::string what = describe(dt, c);
  SCOPED_TRACE(what);
  Tensor x = test::random_tensor({c.m, c.k}, seed, -1, 1);
  Tensor w = test::random_tensor({c.n, c.k}, seed + 1, -0.5, 0.5);
  Tensor b = test::random_tensor({c.n}, seed + 2, -1, 1);
  Tensor y0 = test::random_tensor({c.m, c.n}, seed + 3, -1, 1);
  const Reference want = reference(x, dequantized(w, dt), c.bias ? &b : nullptr, c.accumulate ? &y0 : nullptr);

  Tensor wd = ops::prepare_linear_weight(w, dt, dev);
  ASSERT_EQ(wd.shape(), (Shape{c.n, c.k}));
  ASSERT_EQ(wd.dtype(), dt);
  Tensor xd = x.to(dev), bd = b.to(dev), yd = c.accumulate ? y0.to(dev) : Tensor::zeros({c.m, c.n}, DType::F32, dev);
  ops::linear(xd, wd, c.bias ? &bd : nullptr, yd, c.accumulate);
  expect_close(test::to_cpu_f32(yd), want, c.k, what);
}

// Shapes that hit every path: one row, GEMV row groups (3, 9, 16), the GEMM path with partial
// micro-tiles (17, 300), threads splitting M with several M tiles (1500), K over several K blocks,
// K not a multiple of the vector width, a partial panel (N = 33, 100), N = 1, a large weight.
TEST_P(LinearTest, FloatWeightsMatchScalarReference) {
  const Case cases[] = {
      {1, 1, 1, false, false},      {1, 33, 37, true, false},     {3, 64, 200, false, true},
      {9, 100, 19, true, true},     {16, 64, 64, true, false},    {17, 33, 37, true, true},
      {300, 70, 130, true, false},  {300, 1, 600, false, true},   {1500, 40, 300, true, true},
      {40, 600, 1024, true, false},  // an F32 weight over 2 MiB: huge-page storage on the CPU
  };
  uint64_t seed = 10;
  for (const DType dt : {DType::F32, DType::BF16, DType::F16}) {
    for (const Case& c : cases) run_case(GetParam(), dt, c, seed += 4);
  }
}

TEST_P(LinearTest, QuantizedWeightsMatchScalarReference) {
  const Case cases[] = {
      {1, 1, 32, false, false},    {1, 33, 64, true, false},    {3, 64, 96, false, true},
      {9, 100, 32, true, true},    {16, 64, 320, true, false},  {17, 33, 64, true, true},
      {300, 70, 128, true, false}, {300, 1, 608, false, true},  {1500, 40, 288, true, true},
  };
  uint64_t seed = 1000;
  for (const DType dt : {DType::Q8, DType::Q4}) {
    for (const Case& c : cases) run_case(GetParam(), dt, c, seed += 4);
  }
}

// The quantisation error itself: per element within half a step of its block, and over a
// realistic layer as large as uniform rounding predicts (step / sqrt(12) against rms amax / sqrt(3)).
TEST_P(LinearTest, QuantizationErrorWithinBound) {
  const Device dev = GetParam();
  const int64_t m = 4, n = 96, k = 512;
  Tensor x = test::random_tensor({m, k}, 7, -1, 1);
  Tensor w = test::random_tensor({n, k}, 8, -0.05f, 0.05f);
  const Reference exact = reference(x, w, nullptr, nullptr);
  for (const auto& [dt, qmax] : {std::pair{DType::Q8, 127}, std::pair{DType::Q4, 7}}) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor dq = dequantized(w, dt);
    for (int64_t r = 0; r < n; ++r) {
      for (int64_t b = 0; b < k; b += 32) {
        float amax = 0;
        for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(w.data<float>()[r * k + b + i]));
        // Half a step, plus the one rounding of q * s to f32.
        const double half_step = amax / qmax / 2 + 1e-6 * amax;
        for (int i = 0; i < 32; ++i) {
          ASSERT_LE(std::fabs(double(w.data<float>()[r * k + b + i]) - dq.data<float>()[r * k + b + i]), half_step);
        }
      }
    }
    // Uniform rounding error has rms step/sqrt(12); the weight rms is amax/sqrt(3): ratio 1/(2 qmax).
    const double weight_rel = test::rel_l2(dq, w);
    EXPECT_LT(weight_rel, 1.1 / (2 * qmax));
    EXPECT_GT(weight_rel, 0.7 / (2 * qmax));
    // And the device's output carries that error, not more: random signs average it the same way.
    Tensor wd = ops::prepare_linear_weight(w, dt, dev);
    Tensor xd = x.to(dev), yd = Tensor::empty({m, n}, DType::F32, dev);
    ops::linear(xd, wd, nullptr, yd, false);
    const double out_rel = test::rel_l2(test::to_cpu_f32(yd), exact.y);
    EXPECT_LT(out_rel, 1.3 / (2 * qmax)) << "weight rel " << weight_rel;
  }
}

TEST_P(LinearTest, PreparesFromHalfPrecisionFiles) {
  const Device dev = GetParam();
  const int64_t m = 5, n = 40, k = 64;
  Tensor x = test::random_tensor({m, k}, 21);
  Tensor w32 = test::random_tensor({n, k}, 22);
  for (const DType file_dt : {DType::BF16, DType::F16}) {
    Tensor wfile = test::convert(w32, file_dt, Device::CPU);
    Tensor wvals = test::to_cpu_f32(wfile);  // the file's values, exactly
    for (const DType dt : kWeightDtypes) {
      SCOPED_TRACE(std::string(dtype_name(file_dt)) + " file -> " + dtype_name(dt));
      const Reference want = reference(x, dequantized(wvals, dt), nullptr, nullptr);
      Tensor wd = ops::prepare_linear_weight(wfile, dt, dev);
      Tensor xd = x.to(dev), yd = Tensor::empty({m, n}, DType::F32, dev);
      ops::linear(xd, wd, nullptr, yd, false);
      expect_close(test::to_cpu_f32(yd), want, k, "half file");
    }
  }
}

TEST_P(LinearTest, EmptyRowsAndEmptyK) {
  const Device dev = GetParam();
  Tensor w = ops::prepare_linear_weight(test::random_tensor({8, 16}, 3), DType::F32, dev);
  Tensor x0 = Tensor::empty({0, 16}, DType::F32, dev), y0 = Tensor::empty({0, 8}, DType::F32, dev);
  ops::linear(x0, w, nullptr, y0, false);  // nothing to do, must not fail

  Tensor wk = ops::prepare_linear_weight(Tensor::empty({8, 0}, DType::F32), DType::F32, dev);
  Tensor xk = Tensor::empty({3, 0}, DType::F32, dev);
  Tensor b = test::random_tensor({8}, 4);
  Tensor bd = b.to(dev), y = Tensor::zeros({3, 8}, DType::F32, dev);
  ops::linear(xk, wk, &bd, y, false);
  Tensor got = test::to_cpu_f32(y);
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 8; ++j) EXPECT_EQ(got.data<float>()[i * 8 + j], b.data<float>()[j]);
}

TEST_P(LinearTest, RejectsBadShapes) {
  const Device dev = GetParam();
  Tensor w = ops::prepare_linear_weight(test::random_tensor({8, 64}, 3), DType::F32, dev);
  Tensor x = Tensor::zeros({2, 64}, DType::F32, dev), y = Tensor::zeros({2, 8}, DType::F32, dev);
  Tensor x_bad = Tensor::zeros({2, 63}, DType::F32, dev), y_bad = Tensor::zeros({2, 9}, DType::F32, dev);
  Tensor y_rows = Tensor::zeros({3, 8}, DType::F32, dev), x3 = Tensor::zeros({2, 64, 1}, DType::F32, dev);
  Tensor b_bad = Tensor::zeros({9}, DType::F32, dev), b_i32 = Tensor::zeros({8}, DType::I32, dev);
  EXPECT_THROW(ops::linear(x_bad, w, nullptr, y, false), InvalidArgument);
  EXPECT_THROW(ops::linear(x, w, nullptr, y_bad, false), InvalidArgument);
  EXPECT_THROW(ops::linear(x, w, nullptr, y_rows, false), InvalidArgument);
  EXPECT_THROW(ops::linear(x3, w, nullptr, y, false), InvalidArgument);
  EXPECT_THROW(ops::linear(x, w, &b_bad, y, false), InvalidArgument);
  EXPECT_THROW(ops::linear(x, w, &b_i32, y, false), InvalidArgument);
  // Block formats need whole blocks of 32 along K.
  Tensor w48 = test::random_tensor({8, 48}, 5);
  EXPECT_THROW(ops::prepare_linear_weight(w48, DType::Q8, dev), InvalidArgument);
  EXPECT_THROW(ops::prepare_linear_weight(w48, DType::Q4, dev), InvalidArgument);
  EXPECT_THROW(ops::prepare_linear_weight(test::random_tensor({8}, 5), DType::F32, dev), InvalidArgument);
}

// A prologue is the transform's op into scratch followed by the product: on F32 every device
// runs exactly that, so the results are identical; bad shapes are rejected.
TEST_P(LinearTest, PrologueIsTheTransformThenTheProduct) {
  const Device dev = GetParam();
  for (const auto kind : {ops::LinearPrologue::Kind::RmsNorm, ops::LinearPrologue::Kind::SquaredReluGate}) {
    const bool gate = kind == ops::LinearPrologue::Kind::SquaredReluGate;
    const int64_t m = 3, n = 40, k = 64;
    Tensor x = test::random_tensor({m, gate ? 2 * k : k}, 77, -2, 2).to(dev);
    Tensor w = ops::prepare_linear_weight(test::random_tensor({n, k}, 78, -0.2f, 0.2f), DType::F32, dev);
    Tensor b = test::random_tensor({n}, 79, -1, 1).to(dev);
    Tensor scratch = Tensor::empty({m, k}, DType::F32, dev), t = Tensor::empty({m, k}, DType::F32, dev);
    Tensor y = test::random_tensor({m, n}, 80, -1, 1).to(dev), want = y.clone();
    ops::linear(x, w, &b, y, /*accumulate=*/true, {kind, 1e-6f, &scratch});
    if (gate) {
      ops::squared_relu_gate(x, t);
    } else {
      ops::rms_norm(x, nullptr, 1e-6f, t);
    }
    ops::linear(t, w, &b, want, /*accumulate=*/true);
    EXPECT_EQ(test::max_abs_diff(test::to_cpu_f32(y), test::to_cpu_f32(want)), 0.0) << (gate ? "gate" : "rms_norm");
    // Scratch of the wrong shape, a missing scratch, x of the wrong width.
    Tensor bad = Tensor::empty({m, k + 1}, DType::F32, dev);
    EXPECT_THROW(ops::linear(x, w, nullptr, y, false, {kind, 1e-6f, &bad}), InvalidArgument);
    EXPECT_THROW(ops::linear(x, w, nullptr, y, false, {kind, 1e-6f, nullptr}), InvalidArgument);
    Tensor wide = Tensor::empty({m, 3 * k}, DType::F32, dev);
    EXPECT_THROW(ops::linear(wide, w, nullptr, y, false, {kind, 1e-6f, &scratch}), InvalidArgument);
  }
}

TEST_P(LinearTest, RefusesToQuantizeNonFiniteWeights) {
  for (const float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    Tensor w = test::random_tensor({40, 64}, 51);
    w.data<float>()[37 * 64 + 5] = bad;
    EXPECT_THROW(ops::prepare_linear_weight(w, DType::Q8, GetParam()), InvalidArgument);
    EXPECT_THROW(ops::prepare_linear_weight(w, DType::Q4, GetParam()), InvalidArgument);
    EXPECT_NO_THROW(ops::prepare_linear_weight(w, DType::F32, GetParam()));
  }
}

FALCON_INSTANTIATE_DEVICE_TESTS(LinearTest);

// CPU specifics: the packed layout decodes to exactly the dequantised values, results do not
// depend on the thread count, and quantising a non-finite weight is refused.
TEST(LinearCpu, PackedLayoutDecodesToDequantizedValues) {
  const int64_t n = 70, k = 96;  // two full panels and a partial one
  Tensor w = test::random_tensor({n, k}, 31);
  for (const DType dt : kWeightDtypes) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor packed = ops::prepare_linear_weight(w, dt, Device::CPU);
    EXPECT_EQ(packed.nbytes(), size_t(n) * row_bytes(dt, k));
    Tensor want = dequantized(w, dt);
    const ops::cpu::PackedWeight pw{packed.data<uint8_t>(), dt, n, k};
    std::vector<float> panel(size_t(k) * ops::cpu::kPanel);
    for (int64_t p = 0; p < pw.panels(); ++p) {
      ops::cpu::decode_panel(pw, p, 0, k, panel.data());
      for (int64_t kk = 0; kk < k; ++kk) {
        for (int j = 0; j < ops::cpu::kPanel; ++j) {
          const int64_t row = p * ops::cpu::kPanel + j;
          const float expect = row < n ? want.data<float>()[row * k + kk] : 0.f;
          ASSERT_EQ(panel[size_t(kk) * ops::cpu::kPanel + size_t(j)], expect) << "row " << row << " k " << kk;
        }
      }
    }
  }
}

TEST(LinearCpu, SameBitsForAnyThreadCount) {
  const int before = num_threads();
  for (const int64_t m : {4, 700}) {
    Tensor x = test::random_tensor({m, 288}, 41);
    Tensor w = ops::prepare_linear_weight(test::random_tensor({130, 288}, 42), DType::Q4, Device::CPU);
    Tensor y1 = Tensor::empty({m, 130}, DType::F32), y2 = Tensor::empty({m, 130}, DType::F32);
    set_num_threads(1);
    ops::linear(x, w, nullptr, y1, false);
    set_num_threads(before);
    ops::linear(x, w, nullptr, y2, false);
    EXPECT_EQ(test::max_abs_diff(y1, y2), 0.0) << "M=" << m;
  }
}

// Batched decode: a request's logits must not depend on which other requests share its step.
TEST(LinearCpu, DecodeRowsDoNotDependOnTheBatch) {
  const int64_t n = 100, k = 256, batch = 16;
  Tensor x = test::random_tensor({batch, k}, 61);
  Tensor w32 = test::random_tensor({n, k}, 62);
  for (const DType dt : kWeightDtypes) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor w = ops::prepare_linear_weight(w32, dt, Device::CPU);
    Tensor all = Tensor::empty({batch, n}, DType::F32);
    ops::linear(x, w, nullptr, all, false);
    for (const int64_t r : {0, 5, 15}) {
      Tensor one = Tensor::empty({1, n}, DType::F32);
      ops::linear(x.rows(r, r + 1), w, nullptr, one, false);
      EXPECT_EQ(test::max_abs_diff(one, all.rows(r, r + 1)), 0.0) << "row " << r;
    }
  }
}

#ifdef FALCON_HAS_CUDA
// The CUDA layout (linear_weight_cuda.h) built by the device's quantisation kernel holds exactly
// quantize.h's scales and q: random rows, a zero block, exact halves (ties to even) and the
// clamp's edge, from F32, BF16 and F16 files.
TEST(LinearCuda, QuantisesToQuantizeHExactly) {
  if (!device_available(Device::CUDA)) GTEST_SKIP() << "no CUDA device";
  const int64_t n = 37, k = 160, blocks = k / ops::kQuantBlock;
  Tensor w32 = test::random_tensor({n, k}, 61, -2, 2);
  float* wp = w32.data<float>();
  for (int i = 0; i < ops::kQuantBlock; ++i) wp[3 * k + 32 + i] = 0.f;  // a zero block
  // amax 127 (Q8 scale 1) with values at exact halves, and amax 7 (Q4 scale 1) likewise.
  for (int i = 0; i < ops::kQuantBlock; ++i) wp[5 * k + i] = i == 0 ? 127.f : float(i % 9) - 4.5f;
  for (int i = 0; i < ops::kQuantBlock; ++i) wp[6 * k + 64 + i] = i == 3 ? -7.f : float(i % 7) * 0.5f - 1.5f;
  for (const DType file_dt : {DType::F32, DType::BF16, DType::F16}) {
    const Tensor file = file_dt == DType::F32 ? w32 : test::convert(w32, file_dt, Device::CPU);
    const Tensor vals = test::to_cpu_f32(file);
    for (const DType dt : {DType::Q8, DType::Q4}) {
      SCOPED_TRACE(std::string(dtype_name(file_dt)) + " file -> " + dtype_name(dt));
      const bool q8 = dt == DType::Q8;
      const Tensor got = ops::prepare_linear_weight(file, dt, Device::CUDA).to(Device::CPU);
      const auto* bytes = static_cast<const uint8_t*>(got.raw());
      const auto* scales = reinterpret_cast<const float*>(bytes + (q8 ? n * k : n * k / 2));
      int bad = 0;
      for (int64_t r = 0; r < n && bad < 5; ++r) {
        for (int64_t b = 0; b < blocks && bad < 5; ++b) {
          int8_t q[ops::kQuantBlock];
          const float* src = vals.data<float>() + r * k + b * ops::kQuantBlock;
          const float s = q8 ? ops::quantize_block_q8(src, q) : ops::quantize_block_q4(src, q);
          bool same = std::memcmp(&s, &scales[r * blocks + b], sizeof(float)) == 0;
          for (int i = 0; i < ops::kQuantBlock; ++i) {
            const int64_t e = r * k + b * ops::kQuantBlock + i;
            const int got_q = q8 ? int(int8_t(bytes[e])) : int((bytes[e / 2] >> (e % 2 ? 4 : 0)) & 15) - 8;
            same = same && got_q == q[i];
          }
          if (!same) {
            ADD_FAILURE() << "row " << r << " block " << b << ": scale " << scales[r * blocks + b] << " want " << s;
            ++bad;
          }
        }
      }
    }
  }
}

// Products of many rows expand their weights for cuBLASLt (LinearTuning::expand_min_rows), a
// chunk of rows at a time: the same f32-accurate result as the dequantising kernels, with chunks
// of 64 rows (several, the last one partial), bias and accumulation, for every weight dtype that
// takes that path against F32 activations.
TEST(LinearCuda, ExpandedWeightsMatchTheReference) {
  if (!device_available(Device::CUDA)) GTEST_SKIP() << "no CUDA device";
  const ops::cuda::LinearTuning saved = ops::cuda::linear_tuning();
  const Case cases[] = {{300, 150, 96, true, true}, {40, 600, 256, false, false}, {17, 200, 64, true, false}};
  uint64_t seed = 3000;
  for (const long long chunk_bytes : {64ll * 256 * 4, 16ll << 20}) {
    for (const int min_rows : {0, 9}) {
      ops::cuda::LinearTuning t = saved;
      t.expand_min_rows = min_rows;
      t.expand_chunk_bytes = chunk_bytes;
      ops::cuda::set_linear_tuning(t);
      for (const DType dt : {DType::Q8, DType::Q4, DType::F16, DType::BF16}) {
        for (const Case& c : cases) {
          SCOPED_TRACE("expand_min_rows " + std::to_string(min_rows) + ", chunk " + std::to_string(chunk_bytes));
          run_case(Device::CUDA, dt, c, seed += 4);
        }
      }
    }
  }
  ops::cuda::set_linear_tuning(saved);
}
#endif


}  // namespace
}  // namespace falcon
