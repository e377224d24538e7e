// Tests of the small ops: squared_relu_gate, squared_relu, embedding, argmax, convert, add.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "ops/activation.h"
#include "ops/argmax.h"
#include "ops/convert.h"
#include "ops/embedding.h"
#include "test_support.h"

namespace falcon {
namespace {

class ElementwiseTest : public ::testing::TestWithParam<Device> {};

TEST_P(ElementwiseTest, SquaredReluGate) {
  const Device dev = GetParam();
  Tensor a = test::random_tensor({5, 14}, 7, -3, 3);
  Tensor out = Tensor::empty({5, 7}, DType::F32, dev);
  ops::squared_relu_gate(a.to(dev), out);
  Tensor got = test::to_cpu_f32(out);
  for (int64_t m = 0; m < 5; ++m) {
    for (int64_t j = 0; j < 7; ++j) {
      const float g = std::max(0.f, a.data<float>()[m * 14 + 2 * j]);
      EXPECT_NEAR(got.data<float>()[m * 7 + j], g * g * a.data<float>()[m * 14 + 2 * j + 1], 1e-5);
    }
  }
}

TEST_P(ElementwiseTest, SquaredRelu) {
  const Device dev = GetParam();
  Tensor x = test::random_tensor({3, 50}, 8, -2, 2);
  Tensor out = Tensor::empty({3, 50}, DType::F32, dev);
  ops::squared_relu(x.to(dev), out);
  Tensor got = test::to_cpu_f32(out);
  for (int64_t i = 0; i < x.numel(); ++i) {
    const float r = std::max(0.f, x.data<float>()[i]);
    EXPECT_FLOAT_EQ(got.data<float>()[i], r * r);
  }
}

TEST_P(ElementwiseTest, EmbeddingFromEachTableDtype) {
  const Device dev = GetParam();
  Tensor table = test::random_tensor({10, 6}, 9);
  Tensor ids = Tensor::empty({4}, DType::I32);
  const int32_t want_ids[4] = {3, 0, 9, 3};
  for (int i = 0; i < 4; ++i) ids.data<int32_t>()[i] = want_ids[i];
  for (DType dt : {DType::F32, DType::BF16, DType::F16}) {
    Tensor t = test::convert(table, dt, dev);
    Tensor out = Tensor::empty({4, 6}, DType::F32, dev);
    ops::embedding(t, ids.to(dev), out);
    Tensor got = test::to_cpu_f32(out), tf = test::to_cpu_f32(t);
    for (int i = 0; i < 4; ++i) {
      for (int j = 0; j < 6; ++j) EXPECT_EQ(got.data<float>()[i * 6 + j], tf.data<float>()[want_ids[i] * 6 + j]);
    }
  }
  // The ids' host copy, checked there instead of reading the ids back: the same rows.
  Tensor out_h = Tensor::empty({4, 6}, DType::F32, dev), out_d = Tensor::empty({4, 6}, DType::F32, dev);
  const Tensor td = table.to(dev), idd = ids.to(dev);
  ops::embedding(td, idd, out_h, &ids);
  ops::embedding(td, idd, out_d);
  EXPECT_EQ(test::max_abs_diff(test::to_cpu_f32(out_h), test::to_cpu_f32(out_d)), 0.0);
  EXPECT_EQ(test::to_cpu_f32(out_h).data<float>()[2 * 6 + 5], table.data<float>()[9 * 6 + 5]);
  Tensor short_ids = Tensor::zeros({3}, DType::I32);
  EXPECT_THROW(ops::embedding(td, idd, out_h, &short_ids), InvalidArgument);
  if (dev != Device::CPU) {
    EXPECT_THROW(ops::embedding(td, idd, out_h, &idd), InvalidArgument);  // not on the host
  }

  ids.data<int32_t>()[1] = 10;
  Tensor out = Tensor::empty({4, 6}, DType::F32, dev);
  EXPECT_THROW(ops::embedding(table.to(dev), ids.to(dev), out), InvalidArgument);
  EXPECT_THROW(ops::embedding(td, idd, out, &ids), InvalidArgument);  // the host copy is what is checked
  ids.data<int32_t>()[1] = -1;
  EXPECT_THROW(ops::embedding(td, idd, out, &ids), InvalidArgument);
}

TEST_P(ElementwiseTest, ArgmaxTakesFirstMaximum) {
  const Device dev = GetParam();
  Tensor x = test::random_tensor({3, 1000}, 11);
  x.data<float>()[417] = 5.f;
  x.data<float>()[1000 + 2] = 7.f;
  x.data<float>()[1000 + 900] = 7.f;  // tie: first wins
  x.data<float>()[2000 + 999] = 3.f;
  Tensor out = Tensor::empty({3}, DType::I32, dev);
  ops::argmax(x.to(dev), out);
  Tensor got = out.to(Device::CPU);
  EXPECT_EQ(got.data<int32_t>()[0], 417);
  EXPECT_EQ(got.data<int32_t>()[1], 2);
  EXPECT_EQ(got.data<int32_t>()[2], 999);
}

// Long rows (a vocabulary's logits) on few and on many rows, 16-byte and odd row widths (on CUDA
// the rows split over blocks, or a block per row): the first maximum across slice boundaries,
// NaNs never winning, an all-NaN row giving 0, against a scalar reference.
TEST_P(ElementwiseTest, ArgmaxOfLongRows) {
  const Device dev = GetParam();
  const auto reference = [](const float* row, int64_t n) {
    int64_t best = -1;
    for (int64_t i = 0; i < n; ++i) {
      if (std::isnan(row[i])) continue;
      if (best < 0 || row[i] > row[best]) best = i;
    }
    return best < 0 ? 0 : int32_t(best);
  };
  for (const int64_t n : {int64_t(65536), int64_t(70001), int64_t(4096)}) {
    for (const int64_t rows : {int64_t(1), int64_t(5), int64_t(160)}) {
      Tensor x = test::random_tensor({rows, n}, 40 + uint64_t(n + rows), -5, 5);
      float* d = x.data<float>();
      for (int64_t r = 0; r < rows; ++r) {
        float* row = d + r * n;
        switch (r % 5) {
          case 0: row[n - 1] = 9.f; break;  // the last element
          case 1:                            // a tie across slices: the first wins
            row[n / 2 + 3] = 9.f;
            row[n - 7] = 9.f;
            break;
          case 2:  // NaNs around the maximum never win
            row[17] = std::nanf("");
            row[n / 3] = 9.f;
            row[n / 3 + 1] = std::nanf("");
            break;
          case 3:  // all NaN
            std::fill(row, row + n, std::nanf(""));
            break;
          default: row[0] = 9.f; break;
        }
      }
      for (const DType dt : {DType::F32, DType::BF16}) {
        if (dev == Device::CPU && dt == DType::BF16) continue;
        const Tensor xd = test::convert(x, dt, dev);
        const Tensor xr = test::to_cpu_f32(xd);  // the values the device sees
        Tensor out = Tensor::empty({rows}, DType::I32, dev);
        ops::argmax(xd, out);
        const Tensor got = out.to(Device::CPU);
        for (int64_t r = 0; r < rows; ++r) {
          ASSERT_EQ(got.data<int32_t>()[r], reference(xr.data<float>() + r * n, n))
              << dtype_name(dt) << " n=" << n << " rows=" << rows << " row " << r;
        }
      }
    }
  }
}

TEST_P(ElementwiseTest, ConvertRoundTripsAndAdd) {
  const Device dev = GetParam();
  Tensor x = test::random_tensor({4, 33}, 12, -100, 100);
  Tensor b = Tensor::empty({4, 33}, DType::BF16, dev);
  ops::convert(x.to(dev), b);
  Tensor got = test::to_cpu_f32(b);
  for (int64_t i = 0; i < x.numel(); ++i) {
    EXPECT_EQ(got.data<float>()[i], bf16_to_f32(f32_to_bf16(x.data<float>()[i])));
  }
  Tensor y = test::random_tensor({4, 33}, 13);
  Tensor sum = Tensor::empty({4, 33}, DType::F32, dev);
  ops::add(x.to(dev), y.to(dev), sum);
  Tensor s = test::to_cpu_f32(sum);
  for (int64_t i = 0; i < x.numel(); ++i) EXPECT_EQ(s.data<float>()[i], x.data<float>()[i] + y.data<float>()[i]);
}

FALCON_INSTANTIATE_DEVICE_TESTS(ElementwiseTest);

}  // namespace
}  // namespace falcon
