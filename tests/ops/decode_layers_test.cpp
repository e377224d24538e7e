#include "ops/decode_layers.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <vector>

#include "ops/cuda_graph.h"
#include "ops/linear.h"
#include "ops/qk_norm_rope.h"
#include "rope_reference.h"
#include "test_support.h"

namespace falcon {
namespace {

// Decode steps of one row through every layer, checked against a double-precision reference
// written from MODEL.md (no op of the engine in it): weightless rms_norm, the qkv product, q/k
// RMS-normalised per head and rotated by the 3-D RoPE (keys expanded to the query heads),
// attention with the learned sink over the row's paged keys, the output product, the
// squared-ReLU gated feed-forward on interleaved (gate, up) rows.
class DecodeLayersTest : public ::testing::TestWithParam<Device> {};

struct Dims {
  int64_t D, H, K, hd, F, layers;
};

struct Case {
  Dims d;
  int64_t keys0;  // keys in the pool before the first step
  int steps;
  float ph, pw;  // the rows' 2-D position (0, 0 for text)
};

constexpr float kTheta = 10000.f;
constexpr float kEps = 1.1920929e-7f;
constexpr int64_t kBlock = 16;

Tensor rounded(const Tensor& x, DType dtype) {
  return test::to_cpu_f32(test::convert(x, dtype, Device::CPU));
}

struct Model {
  std::vector<Tensor> wqkv, wo, w13, w2, sinks;  // F32, CPU, values representable in bf16
  Tensor golden;
};

Model make_model(const Dims& d, uint64_t seed) {
  Model m;
  const auto weight = [&](int64_t n, int64_t k, uint64_t s) {
    const float a = 1.5f / std::sqrt(float(k));
    return rounded(test::random_tensor({n, k}, s, -a, a), DType::BF16);
  };
  for (int64_t l = 0; l < d.layers; ++l) {
    const uint64_t s = seed + uint64_t(l) * 10;
    m.wqkv.push_back(weight((d.H + 2 * d.K) * d.hd, d.D, s + 1));
    m.wo.push_back(weight(d.D, d.H * d.hd, s + 2));
    m.w13.push_back(weight(2 * d.F, d.D, s + 3));
    m.w2.push_back(weight(d.D, d.F, s + 4));
    m.sinks.push_back(test::random_tensor({d.H}, s + 5, -2, 2));
  }
  m.golden = test::random_tensor({d.H, d.hd / 4, 2}, seed + 7, -3, 3);
  return m;
}

std::vector<double> matvec(const Tensor& w, const std::vector<double>& x) {
  const int64_t n = w.dim(0), k = w.dim(1);
  std::vector<double> y(size_t(n), 0.0);
  for (int64_t r = 0; r < n; ++r) {
    double s = 0;
    for (int64_t c = 0; c < k; ++c) s += double(w.data<float>()[r * k + c]) * x[size_t(c)];
    y[size_t(r)] = s;
  }
  return y;
}

std::vector<double> rms(const std::vector<double>& x) {
  double ss = 0;
  for (double v : x) ss += v * v;
  const double inv = 1 / std::sqrt(ss / double(x.size()) + kEps);
  std::vector<double> y(x);
  for (double& v : y) v *= inv;
  return y;
}

// One step in double: x through the layers; the step's keys and values into the pools (F32,
// CPU, [blocks, 16, H, hd] / [blocks, 16, K, hd]) at key n - 1.
std::vector<double> reference_step(const Dims& d, const Model& m, std::vector<Tensor>& kc,
                                   std::vector<Tensor>& vc, const std::vector<int32_t>& table,
                                   int64_t n, float pos_t, float ph, float pw,
                                   std::vector<double> x) {
  const int64_t H = d.H, K = d.K, hd = d.hd, G = H / K;
  const auto slot = [&](int64_t j) {
    return int64_t(table[size_t(j / kBlock)]) * kBlock + j % kBlock;
  };
  for (int64_t l = 0; l < d.layers; ++l) {
    const std::vector<double> qkv = matvec(m.wqkv[size_t(l)], rms(x));
    std::vector<double> q(static_cast<size_t>(H * hd));
    float* kp = kc[size_t(l)].data<float>();
    float* vp = vc[size_t(l)].data<float>();
    const int64_t s = slot(n - 1);
    for (int64_t h = 0; h < H; ++h) {
      const float* gh = m.golden.data<float>() + h * (hd / 4) * 2;
      test::reference_norm_rope(qkv.data() + h * hd, hd, pos_t, ph, pw, gh, kTheta, kEps,
                                q.data() + h * hd);
      std::vector<double> k(static_cast<size_t>(hd));
      test::reference_norm_rope(qkv.data() + (H + h / G) * hd, hd, pos_t, ph, pw, gh, kTheta, kEps,
                                k.data());
      for (int64_t e = 0; e < hd; ++e) kp[(s * H + h) * hd + e] = float(k[size_t(e)]);
    }
    for (int64_t e = 0; e < K * hd; ++e) vp[s * K * hd + e] = float(qkv[size_t((H + K) * hd + e)]);
    std::vector<double> o(size_t(H * hd), 0.0);
    for (int64_t h = 0; h < H; ++h) {
      std::vector<double> sc(static_cast<size_t>(n));
      double mx = m.sinks[size_t(l)].data<float>()[h];
      for (int64_t j = 0; j < n; ++j) {
        double dot = 0;
        for (int64_t e = 0; e < hd; ++e)
          dot += q[size_t(h * hd + e)] * kp[(slot(j) * H + h) * hd + e];
        sc[size_t(j)] = dot / std::sqrt(double(hd));
        mx = std::max(mx, sc[size_t(j)]);
      }
      double den = std::exp(double(m.sinks[size_t(l)].data<float>()[h]) - mx);
      for (double& v : sc) den += (v = std::exp(v - mx));
      for (int64_t j = 0; j < n; ++j) {
        for (int64_t e = 0; e < hd; ++e)
          o[size_t(h * hd + e)] += sc[size_t(j)] / den * vp[(slot(j) * K + h / G) * hd + e];
      }
    }
    const std::vector<double> attn = matvec(m.wo[size_t(l)], o);
    for (size_t i = 0; i < x.size(); ++i) x[i] += attn[i];
    const std::vector<double> a = matvec(m.w13[size_t(l)], rms(x));
    std::vector<double> gated(static_cast<size_t>(d.F));
    for (int64_t j = 0; j < d.F; ++j) {
      const double g = std::max(a[size_t(2 * j)], 0.0);
      gated[size_t(j)] = g * g * a[size_t(2 * j + 1)];
    }
    const std::vector<double> ffn = matvec(m.w2[size_t(l)], gated);
    for (size_t i = 0; i < x.size(); ++i) x[i] += ffn[i];
  }
  return x;
}

struct Errors {
  double x = 0, new_keys = 0,
         pool = 0;  // worst rel L2 over the steps; new keys; max |diff| elsewhere
};

enum class Path { Default, Graph };

// The case on a device in `dtype`: `steps` decode steps, each with a new x, the reference run
// beside it. The pools start random (the keys before the steps) in shuffled blocks.
Errors run_case(Device dev, DType dtype, const Case& c, uint64_t seed, Path path = Path::Default) {
  const Dims& d = c.d;
  const Model m = make_model(d, seed);
  const int64_t total = c.keys0 + c.steps, blocks = (total + kBlock - 1) / kBlock + 3;
  const int64_t width = (total + kBlock - 1) / kBlock + 1;  // table slots (the last one unused)
  std::vector<int32_t> order(static_cast<size_t>(blocks));
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937(unsigned(seed)));
  std::vector<int32_t> table(size_t(width), -1);
  for (int64_t i = 0; i < width - 1; ++i) table[size_t(i)] = order[size_t(i)];

  std::vector<Tensor> ref_k, ref_v, dev_k, dev_v;
  for (int64_t l = 0; l < d.layers; ++l) {
    ref_k.push_back(rounded(
        test::random_tensor({blocks, kBlock, d.H, d.hd}, seed + 100 + uint64_t(l), -2, 2), dtype));
    ref_v.push_back(
        rounded(test::random_tensor({blocks, kBlock, d.K, d.hd}, seed + 200 + uint64_t(l)), dtype));
    dev_k.push_back(test::convert(ref_k.back(), dtype, dev));
    dev_v.push_back(test::convert(ref_v.back(), dtype, dev));
  }
  const Tensor init_k0 = ref_k[0].clone();
  std::vector<Tensor> wqkv, wo, w13, w2, sinks;
  for (int64_t l = 0; l < d.layers; ++l) {
    wqkv.push_back(ops::prepare_linear_weight(m.wqkv[size_t(l)], dtype, dev));
    wo.push_back(ops::prepare_linear_weight(m.wo[size_t(l)], dtype, dev));
    w13.push_back(ops::prepare_linear_weight(m.w13[size_t(l)], dtype, dev));
    w2.push_back(ops::prepare_linear_weight(m.w2[size_t(l)], dtype, dev));
    sinks.push_back(m.sinks[size_t(l)].to(dev));
  }
  std::vector<ops::DecodeLayer> layers;
  for (int64_t l = 0; l < d.layers; ++l) {
    const size_t i = size_t(l);
    layers.push_back({&wqkv[i], &wo[i], &w13[i], &w2[i], &sinks[i], &dev_k[i], &dev_v[i]});
  }
  const auto act = [&](const Shape& s) {
    return test::convert(Tensor::zeros(s, DType::F32), dtype, dev);
  };
  Tensor n_s = act({1, d.D}), qkv_s = act({1, (d.H + 2 * d.K) * d.hd}), o_s = act({1, d.H, d.hd});
  Tensor a_s = act({1, 2 * d.F}), g_s = act({1, d.F});
  Tensor host_table = Tensor::empty({1, width}, DType::I32);
  std::copy(table.begin(), table.end(), host_table.data<int32_t>());
  const Tensor dtable = host_table.to(dev), golden = m.golden.to(dev);
  Tensor pos_hw = Tensor::empty({1, 2}, DType::F32);
  pos_hw.data<float>()[0] = c.ph;
  pos_hw.data<float>()[1] = c.pw;
  pos_hw = pos_hw.to(dev);
  // Per-step inputs live in fixed device tensors (a graph captures their addresses).
  Tensor x = act({1, d.D}), pos_t = Tensor::zeros({1}, DType::I32, dev),
         lens = Tensor::zeros({1}, DType::I32, dev);
  ops::cuda::Graph graph;

  Errors err;
  std::vector<float> got_new, want_new;
  for (int step = 0; step < c.steps; ++step) {
    const int64_t n = c.keys0 + step + 1;
    const int32_t pt = int32_t(n + 3);
    const Tensor x0 =
        rounded(test::random_tensor({1, d.D}, seed + 300 + uint64_t(step), -2, 2), dtype);
    std::vector<double> xr(x0.data<float>(), x0.data<float>() + d.D);
    xr = reference_step(d, m, ref_k, ref_v, table, n, float(pt), c.ph, c.pw, xr);

    x.copy_from(test::convert(x0, dtype, dev));
    Tensor h_pos = Tensor::empty({1}, DType::I32), h_len = Tensor::empty({1}, DType::I32);
    h_pos.data<int32_t>()[0] = pt;
    h_len.data<int32_t>()[0] = int32_t(n);
    pos_t.copy_from(h_pos);
    lens.copy_from(h_len);
    const auto run = [&] {
      ops::decode_layers(x, layers, pos_t, pos_hw, golden, kTheta, kEps, dtable, lens,
                         {&n_s, &qkv_s, &o_s, &a_s, &g_s});
    };
    if (path == Path::Graph && dev == Device::CUDA) {
      if (!graph.ready()) {  // an eager run first, as the engine does (its scratch grows before a
                             // capture)
        run();
        x.copy_from(test::convert(x0, dtype, dev));
        graph.capture(run);
      }
      graph.launch();
    } else {
      run();
    }
    Tensor want = Tensor::empty({1, d.D}, DType::F32);
    for (int64_t i = 0; i < d.D; ++i) want.data<float>()[i] = float(xr[size_t(i)]);
    err.x = std::max(err.x, test::rel_l2(test::to_cpu_f32(x), want));
  }
  // The keys written by the steps (as one vector), then every other element of the pools exactly.
  const auto slot = [&](int64_t j) {
    return int64_t(table[size_t(j / kBlock)]) * kBlock + j % kBlock;
  };
  double pool = 0;
  for (int64_t l = 0; l < d.layers; ++l) {
    Tensor gk = test::to_cpu_f32(dev_k[size_t(l)]), gv = test::to_cpu_f32(dev_v[size_t(l)]);
    for (int64_t j = c.keys0; j < total; ++j) {
      const int64_t s = slot(j);
      for (int64_t e = 0; e < d.H * d.hd; ++e) {
        got_new.push_back(gk.data<float>()[s * d.H * d.hd + e]);
        want_new.push_back(ref_k[size_t(l)].data<float>()[s * d.H * d.hd + e]);
      }
      for (int64_t e = 0; e < d.K * d.hd; ++e) {
        got_new.push_back(gv.data<float>()[s * d.K * d.hd + e]);
        want_new.push_back(ref_v[size_t(l)].data<float>()[s * d.K * d.hd + e]);
      }
      std::copy_n(ref_k[size_t(l)].data<float>() + s * d.H * d.hd, d.H * d.hd,
                  gk.data<float>() + s * d.H * d.hd);
      std::copy_n(ref_v[size_t(l)].data<float>() + s * d.K * d.hd, d.K * d.hd,
                  gv.data<float>() + s * d.K * d.hd);
    }
    pool = std::max(
        {pool, test::max_abs_diff(gk, ref_k[size_t(l)]), test::max_abs_diff(gv, ref_v[size_t(l)])});
  }
  double num = 0, den = 0;
  for (size_t i = 0; i < got_new.size(); ++i) {
    num += double(got_new[i] - want_new[i]) * (got_new[i] - want_new[i]);
    den += double(want_new[i]) * want_new[i];
  }
  err.new_keys = den > 0 ? std::sqrt(num / den) : 0.0;
  err.pool = pool;
  EXPECT_GT(test::max_abs_diff(ref_k[0], init_k0), 0.0) << "the steps must write keys";
  return err;
}

std::vector<Case> cases() {
  return {
      {{256, 4, 2, 64, 512, 3}, 300, 3, 0.f, 0.f},    // head_dim 64, two query heads per kv head
      {{512, 4, 2, 128, 768, 2}, 1000, 2, 0.f, 0.f},  // head_dim 128
      {{256, 2, 2, 128, 256, 2}, 40, 2, 0.f, 0.f},    // one query head per kv head, few keys
      {{256, 4, 2, 64, 256, 2}, 90, 2, 0.4f, -1.1f},  // a 2-D position: per-head spatial rotation
  };
}

void expect_case(Device dev, DType dtype, const Case& c, uint64_t seed, const char* what,
                 Path path = Path::Default) {
  const Errors e = run_case(dev, dtype, c, seed, path);
  std::printf(
      "[ error    ] decode_layers %s %s %s hd=%lld keys=%lld: x %.2e, new keys %.2e, pool %.1e\n",
      device_name(dev), dtype_name(dtype), what, (long long)c.d.hd, (long long)c.keys0, e.x,
      e.new_keys, e.pool);
  const bool f32 = dtype == DType::F32;
  EXPECT_LT(e.x, f32 ? 2e-5 : 3e-2) << what << " " << dtype_name(dtype) << " hd=" << c.d.hd;
  EXPECT_LT(e.new_keys, f32 ? 2e-5 : 2e-2) << what << " " << dtype_name(dtype) << " hd=" << c.d.hd;
  EXPECT_EQ(e.pool, 0.0) << what << " " << dtype_name(dtype) << " hd=" << c.d.hd;
}

TEST_P(DecodeLayersTest, MatchesTheReference) {
  const Device dev = GetParam();
  uint64_t seed = 11;
  for (const DType dtype : {DType::F32, DType::BF16}) {
    if (dtype != DType::F32 && dev == Device::CPU) continue;  // the CPU computes in F32
    for (const Case& c : cases()) expect_case(dev, dtype, c, seed += 1000, "default");
  }
}

TEST_P(DecodeLayersTest, RejectsMismatchedLayers) {
  const Device dev = GetParam();
  const Dims d{256, 4, 2, 64, 512, 1};
  Tensor x = Tensor::zeros({1, d.D}, DType::F32, dev);
  Tensor wqkv = Tensor::zeros({(d.H + 2 * d.K) * d.hd, d.D}, DType::F32, dev);
  Tensor wo = Tensor::zeros({d.D, d.H * d.hd}, DType::F32, dev),
         w13 = Tensor::zeros({2 * d.F, d.D}, DType::F32, dev);
  Tensor w2_bad = Tensor::zeros({d.D, d.F + 1}, DType::F32, dev),
         sinks = Tensor::zeros({d.H}, DType::F32, dev);
  Tensor kc = Tensor::zeros({4, kBlock, d.H, d.hd}, DType::F32, dev),
         vc = Tensor::zeros({4, kBlock, d.K, d.hd}, DType::F32, dev);
  Tensor n = Tensor::zeros({1, d.D}, DType::F32, dev),
         qkv = Tensor::zeros({1, (d.H + 2 * d.K) * d.hd}, DType::F32, dev);
  Tensor o = Tensor::zeros({1, d.H, d.hd}, DType::F32, dev),
         a = Tensor::zeros({1, 2 * d.F}, DType::F32, dev);
  Tensor g = Tensor::zeros({1, d.F}, DType::F32, dev);
  Tensor pos_t = Tensor::zeros({1}, DType::I32, dev),
         pos_hw = Tensor::zeros({1, 2}, DType::F32, dev);
  Tensor golden = Tensor::zeros({d.H, d.hd / 4, 2}, DType::F32, dev);
  Tensor table = Tensor::zeros({1, 4}, DType::I32, dev), lens = Tensor::zeros({1}, DType::I32, dev);
  std::vector<ops::DecodeLayer> layers = {{&wqkv, &wo, &w13, &w2_bad, &sinks, &kc, &vc}};
  EXPECT_THROW(ops::decode_layers(x, layers, pos_t, pos_hw, golden, kTheta, kEps, table, lens,
                                  {&n, &qkv, &o, &a, &g}),
               InvalidArgument);
  EXPECT_THROW(ops::decode_layers(x, {}, pos_t, pos_hw, golden, kTheta, kEps, table, lens,
                                  {&n, &qkv, &o, &a, &g}),
               InvalidArgument);
}

#ifdef FALCON_HAS_CUDA
// The persistent kernel (off by default) takes these shapes, and under each of its
// settings (keys staged in several rounds, few or uneven splits; captured in a graph and
// replayed) matches the reference; BF16 only (F32 runs op by op).
TEST_P(DecodeLayersTest, PersistentKernelVariantsMatch) {
  const Device dev = GetParam();
  if (dev != Device::CUDA) GTEST_SKIP() << "the CUDA kernel";
  const ops::cuda::DecodeLayersTuning saved = ops::cuda::decode_layers_tuning();
  ops::cuda::DecodeLayersTuning on = saved;
  on.persistent = true;
  ops::cuda::set_decode_layers_tuning(on);
  {
    // It runs: the CUDA entry point reports that it launched the kernel.
    const Case c = cases()[0];
    const Model m = make_model(c.d, 3);
    std::vector<Tensor> w;
    for (const Tensor* t : {&m.wqkv[0], &m.wo[0], &m.w13[0], &m.w2[0]}) {
      w.push_back(ops::prepare_linear_weight(*t, DType::BF16, dev));
    }
    Tensor sinks = m.sinks[0].to(dev);
    Tensor kc = Tensor::zeros({8, kBlock, c.d.H, c.d.hd}, DType::BF16, dev);
    Tensor vc = Tensor::zeros({8, kBlock, c.d.K, c.d.hd}, DType::BF16, dev);
    Tensor x = Tensor::zeros({1, c.d.D}, DType::BF16, dev), golden = m.golden.to(dev);
    Tensor pos_t = Tensor::zeros({1}, DType::I32, dev),
           pos_hw = Tensor::zeros({1, 2}, DType::F32, dev);
    Tensor table_h = Tensor::empty({1, 8}, DType::I32), lens_h = Tensor::empty({1}, DType::I32);
    std::iota(table_h.data<int32_t>(), table_h.data<int32_t>() + 8, 0);
    lens_h.data<int32_t>()[0] = 20;
    const std::vector<ops::DecodeLayer> layers = {{&w[0], &w[1], &w[2], &w[3], &sinks, &kc, &vc}};
    EXPECT_TRUE(ops::cuda::decode_layers(x, layers, pos_t, pos_hw, golden, kTheta, kEps,
                                         table_h.to(dev), lens_h.to(dev)));
  }
  struct Variant {
    const char* name;
    int max_staged_keys, splits;
    Path path;
    int stage_at = 2;
    int l2_ahead = 0;
    int poll_ns = 0;
  };
  const Variant variants[] = {{"keys staged 16 at a time", 16, 0, Path::Default},
                              {"one split per kv head", 0, 1, Path::Default},
                              {"5 splits, 48 keys a round", 48, 5, Path::Default},
                              {"next keys staged after the down product", 0, 0, Path::Default, 5},
                              {"keys staged at the attention, L2 prefetch, polls 64 ns apart", 0, 0,
                               Path::Default, 1, 1, 64},
                              {"graph replays", 0, 0, Path::Graph}};
  uint64_t seed = 7000;
  for (const Variant& v : variants) {
    ops::cuda::DecodeLayersTuning t = on;
    t.max_staged_keys = v.max_staged_keys;
    t.splits = v.splits;
    t.stage_at = v.stage_at;
    t.l2_ahead = v.l2_ahead;
    t.poll_ns = v.poll_ns;
    ops::cuda::set_decode_layers_tuning(t);
    for (const Case& c : cases()) expect_case(dev, DType::BF16, c, seed += 1000, v.name, v.path);
  }
  // Against the ops one by one (same bf16 roundings, other summation orders).
  ops::cuda::set_decode_layers_tuning(on);
  const Case c = cases()[1];
  const Errors fused = run_case(dev, DType::BF16, c, 99);
  ops::cuda::DecodeLayersTuning off = on;
  off.persistent = false;
  ops::cuda::set_decode_layers_tuning(off);
  const Errors by_op = run_case(dev, DType::BF16, c, 99);
  ops::cuda::set_decode_layers_tuning(saved);
  std::printf(
      "[ error    ] decode_layers BF16 vs the reference: persistent x %.2e, op by op x %.2e\n",
      fused.x, by_op.x);
  EXPECT_LT(fused.x, 2 * by_op.x + 1e-3);
}
#endif

FALCON_INSTANTIATE_DEVICE_TESTS(DecodeLayersTest);

}  // namespace
}  // namespace falcon
