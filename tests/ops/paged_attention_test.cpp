#include "ops/paged_attention.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <vector>

#include "ops/qk_norm_rope.h"
#include "test_support.h"
#ifdef FALCON_HAS_CUDA
#include "ops/cuda_tuning.h"
#endif

namespace falcon {
namespace {

class PagedAttentionTest : public ::testing::TestWithParam<Device> {};

bool computes_in(Device dev, DType dtype) { return dtype == DType::F32 || dev == Device::CUDA; }
Tensor rounded(const Tensor& x, DType dtype) { return test::to_cpu_f32(test::convert(x, dtype, Device::CPU)); }

// One query row attending to all n keys of its own sequence, in double.
void reference_row(const float* q, const float* k, const float* v, int64_t n, int64_t H, int64_t K, int64_t hd,
                   const float* sinks, float* out) {
  for (int64_t h = 0; h < H; ++h) {
    if (n == 0) {
      std::fill(out + h * hd, out + (h + 1) * hd, 0.f);
      continue;
    }
    std::vector<double> s(static_cast<size_t>(n));
    double mx = -INFINITY;
    for (int64_t j = 0; j < n; ++j) {
      double d = 0;
      for (int64_t c = 0; c < hd; ++c) d += double(q[h * hd + c]) * k[(j * H + h) * hd + c];
      s[size_t(j)] = d / std::sqrt(double(hd));
      mx = std::max(mx, s[size_t(j)]);
    }
    double sum = 0;
    for (double& e : s) sum += (e = std::exp(e - mx));
    const double gate = 1 / (1 + std::exp(-(mx + std::log(sum) - sinks[h])));
    for (int64_t c = 0; c < hd; ++c) {
      double acc = 0;
      for (int64_t j = 0; j < n; ++j) acc += s[size_t(j)] * v[(j * K + h / (H / K)) * hd + c];
      out[h * hd + c] = float(acc / sum * gate);
    }
  }
}

struct Batch {
  std::vector<int32_t> lens;
  int64_t H, K, hd, block_size;
};

// Builds per-sequence keys/values, scatters them into a pool in shuffled block order through
// paged_kv_write, and checks paged_attention against the dense reference per sequence.
double run_batch(Device dev, DType dtype, const Batch& bt, uint64_t seed) {
  const int64_t B = int64_t(bt.lens.size()), H = bt.H, K = bt.K, hd = bt.hd, bs = bt.block_size;
  int64_t max_blocks = 1, total_blocks = 0;
  for (const int32_t n : bt.lens) {
    max_blocks = std::max<int64_t>(max_blocks, (n + bs - 1) / bs);
    total_blocks += (n + bs - 1) / bs;
  }
  const int64_t num_blocks = total_blocks + 3;  // a few spare blocks nobody owns
  std::vector<int32_t> order(static_cast<size_t>(num_blocks));
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937(unsigned(seed)));

  Tensor table = Tensor::empty({B, max_blocks}, DType::I32);
  std::fill(table.data<int32_t>(), table.data<int32_t>() + table.numel(), -1);
  Tensor lens = Tensor::empty({B}, DType::I32);
  Tensor q = rounded(test::random_tensor({B, H, hd}, seed, -2, 2), dtype);
  Tensor sinks = test::random_tensor({H}, seed + 1, -3, 3);
  Tensor want = Tensor::empty({B, H, hd}, DType::F32);
  Tensor k_cache = test::convert(Tensor::zeros({num_blocks, bs, H, hd}, DType::F32), dtype, dev);
  Tensor v_cache = test::convert(Tensor::zeros({num_blocks, bs, K, hd}, DType::F32), dtype, dev);
  size_t next = 0;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t n = bt.lens[size_t(b)];
    lens.data<int32_t>()[b] = int32_t(n);
    for (int64_t i = 0; i < (n + bs - 1) / bs; ++i) table.data<int32_t>()[b * max_blocks + i] = order[next++];
    Tensor k = rounded(test::random_tensor({n, H, hd}, seed + 10 + uint64_t(b), -2, 2), dtype);
    Tensor v = rounded(test::random_tensor({n, K, hd}, seed + 50 + uint64_t(b)), dtype);
    reference_row(q.data<float>() + b * H * hd, k.data<float>(), v.data<float>(), n, H, K, hd, sinks.data<float>(),
                  want.data<float>() + b * H * hd);
    // Rows go in as a prompt would (all at once), with a padding row (slot -1) in the middle.
    Tensor slots = Tensor::empty({n + 1}, DType::I32);
    Tensor kp = Tensor::zeros({n + 1, H, hd}, DType::F32), vp = Tensor::zeros({n + 1, K, hd}, DType::F32);
    for (int64_t j = 0, r = 0; r <= n; ++r) {
      if (r == n / 2) {
        slots.data<int32_t>()[r] = -1;
        continue;
      }
      slots.data<int32_t>()[r] = int32_t(table.data<int32_t>()[b * max_blocks + j / bs] * bs + j % bs);
      std::copy_n(k.data<float>() + j * H * hd, H * hd, kp.data<float>() + r * H * hd);
      std::copy_n(v.data<float>() + j * K * hd, K * hd, vp.data<float>() + r * K * hd);
      ++j;
    }
    ops::paged_kv_write(test::convert(kp, dtype, dev), test::convert(vp, dtype, dev), slots.to(dev), k_cache, v_cache);
  }
  Tensor out = test::convert(test::random_tensor({B, H, hd}, 99, 1e30f, 2e30f), dtype, dev);
  ops::paged_attention(test::convert(q, dtype, dev), k_cache, v_cache, table.to(dev), lens.to(dev), sinks.to(dev),
                       out);
  return test::rel_l2(test::to_cpu_f32(out), want);
}

TEST_P(PagedAttentionTest, MatchesDenseReference) {
  const Device dev = GetParam();
  const Batch batches[] = {
      {{1, 17, 64, 200, 0}, 4, 2, 32, 16},
      {{3200}, 16, 8, 128, 16},
      {{5, 33, 1000, 1, 70, 129}, 16, 8, 64, 32},
      {{40, 7}, 4, 4, 24, 8},
      // head_dim 64/128 on CUDA: the decode kernel (empty and one-key rows, one head per block
      // when H == K, pairs sharing V otherwise, a block size that is not a power of two).
      {{0, 1, 300, 1300, 16, 17}, 16, 8, 128, 16},
      {{900, 3, 0, 64}, 8, 8, 64, 16},
      {{250, 600}, 8, 2, 128, 24},
  };
  // Many rows (40 x 8 (row, kv head) pairs fill the SMs: the CUDA kernel's other regime).
  Batch many{{}, 16, 8, 128, 16};
  for (int i = 0; i < 40; ++i) many.lens.push_back(i == 7 ? 0 : 1 + (i * 53) % 300);
  std::vector<Batch> all(std::begin(batches), std::end(batches));
  all.push_back(many);
  uint64_t seed = 1;
  for (const DType dtype : {DType::F32, DType::BF16}) {
    if (!computes_in(dev, dtype)) continue;
    for (const Batch& b : all) {
      const double err = run_batch(dev, dtype, b, seed += 100);
      std::printf("[ error    ] paged_attention %s %s B=%zu hd=%lld: rel_l2 %.2e\n", device_name(dev), dtype_name(dtype),
                  b.lens.size(), (long long)b.hd, err);
      EXPECT_LT(err, dtype == DType::F32 ? 1e-5 : 1e-2)
          << dtype_name(dtype) << " B=" << b.lens.size() << " hd=" << b.hd << " block=" << b.block_size;
    }
  }
}

#ifdef FALCON_HAS_CUDA
// Every decode-kernel setting (warps, stages, splits, merges) and the general split kernel agree.
TEST_P(PagedAttentionTest, EveryCudaDecodeVariantMatches) {
  const Device dev = GetParam();
  if (dev != Device::CUDA) GTEST_SKIP() << "CUDA kernel variants";
  const ops::cuda::AttentionTuning saved = ops::cuda::attention_tuning();
  struct Variant {
    bool decode;
    int warps, stages, per_sm, cluster;
    bool pairs = true;
    int stage_all = -1;  // few rows: the whole split staged before the wait (-1) or the ring (0)
  };
  const Variant variants[] = {{false, 4, 4, 0, 0},       {true, 2, 2, 0, 0},        {true, 4, 3, 1, 0},
                              {true, 8, 4, 0, 0},        {true, 8, 8, 64, 0},       {true, 2, 6, 64, 0},
                              {true, 8, 2, 1, 16},       {true, 4, 4, 64, 8},       {true, 4, 2, 0, 0, false},
                              {true, 8, 2, 1, 0, true, 0}, {true, 8, 2, 4, 0, false, -1}};
  const Batch batches[] = {{{0, 1, 300, 1300, 16, 17}, 16, 8, 128, 16}, {{5, 33, 1000, 1, 70, 129}, 16, 8, 64, 32}};
  uint64_t seed = 7000;
  for (const Variant& var : variants) {
    ops::cuda::AttentionTuning t = saved;
    t.decode_kernel = var.decode;
    t.decode_warps = var.warps;
    t.decode_stages = var.stages;
    t.decode_blocks_per_sm = var.per_sm;
    t.decode_cluster = var.cluster;
    t.decode_pairs = var.pairs;
    t.decode_stage_all = var.stage_all;
    ops::cuda::set_attention_tuning(t);
    for (const DType dtype : {DType::F32, DType::BF16}) {
      for (const Batch& b : batches) {
        const double err = run_batch(dev, dtype, b, seed += 100);
        EXPECT_LT(err, dtype == DType::F32 ? 1e-5 : 1e-2)
            << dtype_name(dtype) << " decode=" << var.decode << " warps=" << var.warps << " stages=" << var.stages
            << " per_sm=" << var.per_sm << " cluster=" << var.cluster << " pairs=" << var.pairs
            << " stage_all=" << var.stage_all << " hd=" << b.hd;
      }
    }
  }
  ops::cuda::set_attention_tuning(saved);
}

// The decode step's chain: qk_norm_rope_paged writes each row's newest key and value into the
// pool, and paged_attention reads them at once. On CUDA the attention starts before the kernel
// before it ends and copies every other key early; the newest key's slot holds a sentinel
// until that kernel overwrites it, so an early read of it shows. Compared with the CPU running
// the same chain, several times over (the overlap varies from launch to launch).
TEST_P(PagedAttentionTest, ReadsTheNewestKeyTheKernelBeforeWrote) {
  const Device dev = GetParam();
  if (dev != Device::CUDA) GTEST_SKIP() << "the CPU is the reference";
  const int64_t H = 16, K = 8, hd = 128, bs = 16;
  const std::vector<int32_t> lens = {300, 1000, 37};  // keys after the step, the newest included
  const int64_t B = int64_t(lens.size()), max_blocks = (1000 + bs - 1) / bs, num_blocks = 3 * max_blocks;
  Tensor table = Tensor::empty({B, max_blocks}, DType::I32);
  for (int64_t i = 0; i < table.numel(); ++i) table.data<int32_t>()[i] = int32_t((i * 7) % num_blocks);
  Tensor lens_t = Tensor::empty({B}, DType::I32), slots = Tensor::empty({B}, DType::I32);
  Tensor pos_t = Tensor::empty({B}, DType::I32), pos_hw = Tensor::zeros({B, 2}, DType::F32);
  Tensor kc = test::random_tensor({num_blocks, bs, H, hd}, 11, -2, 2);
  Tensor vc = test::random_tensor({num_blocks, bs, K, hd}, 12);
  for (int64_t b = 0; b < B; ++b) {
    const int32_t newest = lens[size_t(b)] - 1;
    lens_t.data<int32_t>()[b] = lens[size_t(b)];
    pos_t.data<int32_t>()[b] = newest;
    const int32_t slot = table.data<int32_t>()[b * max_blocks + newest / bs] * int32_t(bs) + newest % int32_t(bs);
    slots.data<int32_t>()[b] = slot;
    std::fill_n(kc.data<float>() + slot * H * hd, H * hd, 1e4f);  // sentinel: a stale read dominates the scores
    std::fill_n(vc.data<float>() + slot * K * hd, K * hd, 1e4f);
  }
  const Tensor qkv = test::random_tensor({B, (H + 2 * K) * hd}, 13, -2, 2);
  const Tensor golden = test::random_tensor({H, hd / 4, 2}, 14, -3, 3);
  const Tensor sinks = test::random_tensor({H}, 15, -3, 3);
  const float theta = 10000.f, eps = 1.1920929e-7f;
  const auto chain = [&](Device d, DType dtype) {
    Tensor k = test::convert(kc, dtype, d), v = test::convert(vc, dtype, d);
    Tensor q = test::convert(Tensor::zeros({B, H, hd}, DType::F32), dtype, d);
    Tensor out = test::convert(Tensor::zeros({B, H, hd}, DType::F32), dtype, d);
    ops::qk_norm_rope_paged(test::convert(qkv, dtype, d), pos_t.to(d), pos_hw.to(d), golden.to(d), theta, eps, q,
                            slots.to(d), k, v);
    ops::paged_attention(q, k, v, table.to(d), lens_t.to(d), sinks.to(d), out);
    return test::to_cpu_f32(out);
  };
  const Tensor want = chain(Device::CPU, DType::F32);
  for (const DType dtype : {DType::F32, DType::BF16}) {
    for (int rep = 0; rep < 8; ++rep) {
      const double err = test::rel_l2(chain(dev, dtype), want);
      EXPECT_LT(err, dtype == DType::F32 ? 1e-5 : 2e-2) << dtype_name(dtype) << " rep " << rep;
    }
  }
}

// On CUDA an out-of-range block id masks its keys (no host check): the row attends to the
// keys of its valid blocks only.
TEST_P(PagedAttentionTest, CudaMasksBadBlockIds) {
  const Device dev = GetParam();
  if (dev != Device::CUDA) GTEST_SKIP() << "the CPU rejects bad tables";
  const int64_t H = 4, K = 2, hd = 128, bs = 16, blocks = 4;
  Tensor k = test::random_tensor({blocks * bs, H, hd}, 3, -2, 2), v = test::random_tensor({blocks * bs, K, hd}, 4);
  Tensor q = test::random_tensor({1, H, hd}, 5, -2, 2), sinks = test::random_tensor({H}, 6, -3, 3);
  Tensor table = Tensor::empty({1, 3}, DType::I32), lens = Tensor::empty({1}, DType::I32);
  table.data<int32_t>()[0] = 2;
  table.data<int32_t>()[1] = 1000;  // no such block
  table.data<int32_t>()[2] = -5;
  lens.data<int32_t>()[0] = 40;
  Tensor want = Tensor::empty({1, H, hd}, DType::F32);
  reference_row(q.data<float>(), k.data<float>() + 2 * bs * H * hd, v.data<float>() + 2 * bs * K * hd, bs, H, K, hd,
                sinks.data<float>(), want.data<float>());
  Tensor out = Tensor::zeros({1, H, hd}, DType::F32, dev);
  ops::paged_attention(q.to(dev), k.reshape({blocks, bs, H, hd}).to(dev), v.reshape({blocks, bs, K, hd}).to(dev),
                       table.to(dev), lens.to(dev), sinks.to(dev), out);
  EXPECT_LT(test::rel_l2(out.to(Device::CPU), want), 1e-5);
}
#endif

TEST_P(PagedAttentionTest, WriteLandsInItsSlotOnly) {
  const Device dev = GetParam();
  const int64_t H = 2, K = 1, hd = 8, bs = 4, blocks = 3;
  Tensor kc = Tensor::zeros({blocks, bs, H, hd}, DType::F32, dev), vc = Tensor::zeros({blocks, bs, K, hd}, DType::F32, dev);
  Tensor k = test::random_tensor({3, H, hd}, 5), v = test::random_tensor({3, K, hd}, 6);
  Tensor slots = Tensor::empty({3}, DType::I32);
  slots.data<int32_t>()[0] = 9;
  slots.data<int32_t>()[1] = -1;
  slots.data<int32_t>()[2] = 2;
  ops::paged_kv_write(k.to(dev), v.to(dev), slots.to(dev), kc, vc);
  Tensor kh = kc.to(Device::CPU), vh = vc.to(Device::CPU);
  for (int64_t slot = 0; slot < blocks * bs; ++slot) {
    const int64_t src = slot == 9 ? 0 : slot == 2 ? 2 : -1;
    for (int64_t c = 0; c < H * hd; ++c) {
      EXPECT_EQ(kh.data<float>()[slot * H * hd + c], src < 0 ? 0.f : k.data<float>()[src * H * hd + c]) << slot;
    }
    for (int64_t c = 0; c < K * hd; ++c) {
      EXPECT_EQ(vh.data<float>()[slot * K * hd + c], src < 0 ? 0.f : v.data<float>()[src * K * hd + c]) << slot;
    }
  }
}

TEST_P(PagedAttentionTest, RejectsMismatchedShapes) {
  const Device dev = GetParam();
  Tensor kc = Tensor::zeros({2, 4, 4, 8}, DType::F32, dev), vc = Tensor::zeros({2, 4, 2, 8}, DType::F32, dev);
  Tensor q = Tensor::zeros({1, 4, 8}, DType::F32, dev), out = Tensor::zeros({1, 4, 8}, DType::F32, dev);
  Tensor table = Tensor::zeros({1, 2}, DType::I32, dev), lens = Tensor::zeros({1}, DType::I32, dev);
  Tensor sinks = Tensor::zeros({4}, DType::F32, dev);
  Tensor v_bad = Tensor::zeros({2, 4, 3, 8}, DType::F32, dev), q_bad = Tensor::zeros({1, 4, 9}, DType::F32, dev);
  Tensor table2 = Tensor::zeros({2, 2}, DType::I32, dev);
  EXPECT_THROW(ops::paged_attention(q, kc, v_bad, table, lens, sinks, out), InvalidArgument);
  EXPECT_THROW(ops::paged_attention(q_bad, kc, vc, table, lens, sinks, out), InvalidArgument);
  EXPECT_THROW(ops::paged_attention(q, kc, vc, table2, lens, sinks, out), InvalidArgument);
  Tensor k_rows = Tensor::zeros({1, 4, 8}, DType::F32, dev), v_rows = Tensor::zeros({1, 2, 8}, DType::F32, dev);
  Tensor slots_bad = Tensor::zeros({2}, DType::I32, dev);
  EXPECT_THROW(ops::paged_kv_write(k_rows, v_rows, slots_bad, kc, vc), InvalidArgument);
}

// The CPU checks the table (CUDA cannot without a round trip; there a bad entry masks keys).
TEST(PagedAttentionCpu, RejectsBadTables) {
  Tensor kc = Tensor::zeros({2, 4, 2, 8}, DType::F32), vc = Tensor::zeros({2, 4, 1, 8}, DType::F32);
  Tensor q = Tensor::zeros({1, 2, 8}, DType::F32), out = Tensor::zeros({1, 2, 8}, DType::F32);
  Tensor sinks = Tensor::zeros({2}, DType::F32);
  Tensor table = Tensor::empty({1, 2}, DType::I32), lens = Tensor::empty({1}, DType::I32);
  table.data<int32_t>()[0] = 0;
  table.data<int32_t>()[1] = 5;  // no block 5
  lens.data<int32_t>()[0] = 6;
  EXPECT_THROW(ops::paged_attention(q, kc, vc, table, lens, sinks, out), InvalidArgument);
  lens.data<int32_t>()[0] = 9;  // more than 2 blocks of 4
  EXPECT_THROW(ops::paged_attention(q, kc, vc, table, lens, sinks, out), InvalidArgument);
  Tensor slots = Tensor::empty({1}, DType::I32);
  slots.data<int32_t>()[0] = 8;  // pool has 8 rows
  EXPECT_THROW(ops::paged_kv_write(Tensor::zeros({1, 2, 8}, DType::F32), Tensor::zeros({1, 1, 8}, DType::F32), slots,
                                   kc, vc),
               InvalidArgument);
}

FALCON_INSTANTIATE_DEVICE_TESTS(PagedAttentionTest);

}  // namespace
}  // namespace falcon
