// CPU linear: y[M, N] = x[M, K] . w[N, K]^T (+ bias) (+ y), f32 math throughout.
//
// Two paths over the panel layout of packed_weight.h (docs/cpu_matmul.md has the measurements):
//  - GEMV (M <= 16, decode): memory-bound. Threads split the panels; each panel is streamed
//    once, prefetched ahead and decoded in registers, and every row group (<= 8 rows, <= 4 for
//    Q8/Q4) takes it from L2. One row runs 4 panels at once to cover the FMA latency.
//  - GEMM (M > 16, prefill): compute-bound. Threads split M (or N when M is small); each thread
//    packs x per M tile, takes KC x 32 weight blocks in f32 (F32 in place, others decoded into
//    an L1 buffer) and runs the 14 x 32 FMA kernel (AVX-512), partial sums in an L2 buffer.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <memory>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/parallel.h"
#include "ops/linear.h"
#include "ops/linear_kernels.h"
#include "ops/packed_weight.h"

#ifdef __linux__
#include <sys/mman.h>
#endif

namespace falcon::ops::cpu {

namespace {

// Up to this many rows the weight is streamed once for all of them (GEMV path). Measured
// crossover: the GEMV is ahead up to 16 rows, the GEMM from 24 (docs/cpu_matmul.md).
constexpr int64_t kGemvMaxRows = 16;
// GEMM blocking (see gemm_block): a KC x 32 f32 weight block (32 KiB) stays in L1 while the
// micro-kernel walks an MC x KC block of packed x (<= 688 KiB, L2); partial sums for
// kNcPanels panels (MC x 256 floats) stay in L2. Other values within 5% (docs/cpu_matmul.md).
constexpr int64_t kKc = 256;
constexpr int64_t kNcPanels = 8;
constexpr int64_t kMcMax = kGemmRows * 48;
// Below this many rows per thread the threads split N instead of M, so that the weight is
// read from memory once rather than once per thread.
constexpr int64_t kMinRowsPerThread = 256;

bool supported_weight_dtype(DType d) {
  return d == DType::F32 || d == DType::BF16 || d == DType::F16 || d == DType::Q8 || d == DType::Q4;
}

// Calls f(Rows{}) with the type of the in-register reader for the weight's dtype.
template <class F>
void with_reader(DType dtype, F&& f) {
  switch (dtype) {
    case DType::F32: f(F32Rows{}); return;
    case DType::BF16: f(Bf16Rows{}); return;
    case DType::F16: f(F16Rows{}); return;
    case DType::Q8: f(Q8Rows{}); return;
    case DType::Q4: f(Q4Rows{}); return;
    default: throw InternalError("linear: bad weight dtype");
  }
}

// out[(k - k0) * 32 + j] = weight (k, j) of a full panel, k in [k0, k1).
template <class Rows>
void decode_rows(Rows& rows, int64_t k0, int64_t k1, float* out) {
  PanelRow w;
  auto put = [&](int64_t k) {
    for (int v = 0; v < kVecs; ++v) simd::store(out + (k - k0) * kPanel + v * simd::kLanes, w[v]);
  };
  if constexpr (Rows::kBlocked) {
    for (int64_t b = k0 / kQuantBlock; b < k1 / kQuantBlock; ++b) {
      rows.block(b);
      for (int k = 0; k < kQuantBlock; ++k) {
        rows.row(k, w);
        put(b * kQuantBlock + k);
      }
    }
  } else {
    for (int64_t k = k0; k < k1; ++k) {
      rows.row(k, w);
      put(k);
    }
  }
}

// a[k * mr + m] = x[m, k0 + k] for m < mr, k < kc: the k-major order the kernel broadcasts from.
void pack_rows(const float* x, int64_t ldx, int mr, int64_t k0, int64_t kc, float* a) {
  for (int m = 0; m < mr; ++m) {
    const float* src = x + m * ldx + k0;
    for (int64_t k = 0; k < kc; ++k) a[k * mr + m] = src[k];
  }
}

// Groups of at most `max` rows, balanced (16 rows by 8 -> 8 + 8, 9 -> 5 + 4).
struct RowGroups {
  int64_t count, rows;
  RowGroups(int64_t m, int64_t max) : count((m + max - 1) / max), rows(m) {}
  int64_t begin(int64_t g) const { return rows * g / count; }
  int64_t end(int64_t g) const { return rows * (g + 1) / count; }
};

struct GemvArgs {
  const float* x;  // packed k-major per row group (or the one row)
  const RowGroups* groups;
  const PackedWeight* w;
  const float* bias;
  float* y;
  bool accumulate;
};

// Rows of group starting at r0 (packed at x + r0 * K) times P panels from p, stored to y.
template <int MR, int P, class Rows>
void gemv_tile(const GemvArgs& g, int64_t r0, int64_t p, const Rows (&proto)[P]) {
  const int64_t K = g.w->k, N = g.w->n;
  Rows rows[P];
  Acc<MR> acc[P];
  for (int i = 0; i < P; ++i) {
    rows[i] = proto[i];
    zero<MR>(acc[i]);
  }
  dot_panels<MR, P, true>(g.x + r0 * K, rows, 0, K, acc);
  for (int i = 0; i < P; ++i) {
    const int64_t n0 = (p + i) * kPanel;
    store_tile<MR>(acc[i], g.y + r0 * N + n0, N, g.w->width(p + i), nullptr, 0, g.bias ? g.bias + n0 : nullptr,
                   g.accumulate);
  }
}

// Full panels [p0, p1), in chunks of 4 so that further row groups read a chunk from L2, not DRAM.
template <class Rows>
void gemv_panels(const GemvArgs& g, int64_t p0, int64_t p1) {
  constexpr int64_t kChunk = 4;
  for (int64_t pc = p0; pc < p1; pc += kChunk) {
    const int64_t pe = std::min(p1, pc + kChunk);
    for (int64_t grp = 0; grp < g.groups->count; ++grp) {
      const int64_t r0 = g.groups->begin(grp);
      with_rows<kGemvRows>(int(g.groups->end(grp) - r0), [&](auto rows_c) {
        constexpr int mr = decltype(rows_c)::value;
        constexpr int P = gemv_panels_per_pass<mr, Rows::kBlocked>();
        int64_t p = pc;
        if constexpr (P > 1) {
          for (; p + P <= pe; p += P) {
            Rows proto[P];
            for (int i = 0; i < P; ++i) proto[i] = Rows::at(g.w->panel(p + i));
            gemv_tile<mr, P>(g, r0, p, proto);
          }
        }
        for (; p < pe; ++p) {
          const Rows proto[1] = {Rows::at(g.w->panel(p))};
          gemv_tile<mr, 1>(g, r0, p, proto);
        }
      });
    }
  }
}

void gemv_path(const Tensor& x, const PackedWeight& w, const float* bias, Tensor& y, bool accumulate) {
  const int64_t M = x.dim(0), K = w.k;
  const float* xd = x.data<float>();
  // Each row's sums run in the same order whatever its group, so a row's result does not
  // depend on the batch it came in (up to kGemvMaxRows).
  const RowGroups groups(M, block_elems(w.dtype) > 1 ? kGemvQuantRows : kGemvRows);
  // x packed k-major per group (read by every panel, so it lives in L2); one row needs no packing.
  std::vector<float> xp;
  if (M > 1) {
    xp.resize(size_t(M * K));
    for (int64_t g = 0; g < groups.count; ++g) {
      pack_rows(xd + groups.begin(g) * K, K, int(groups.end(g) - groups.begin(g)), 0, K, xp.data() + groups.begin(g) * K);
    }
  }
  const GemvArgs args{M > 1 ? xp.data() : xd, &groups, &w, bias, y.data<float>(), accumulate};
  const int64_t full = w.n / kPanel;
  parallel_for(w.panels(), 1, [&](int64_t p0, int64_t p1) {
    const int64_t pe = std::min(p1, full);
    if (p0 < pe) with_reader(w.dtype, [&](auto r) { gemv_panels<decltype(r)>(args, p0, pe); });
    if (p1 > full) {
      // The one partial panel: decode it to a zero-padded f32 panel first.
      std::vector<float> buf(size_t(K) * kPanel);
      decode_panel(w, full, 0, K, buf.data());
      for (int64_t grp = 0; grp < groups.count; ++grp) {
        const int64_t r0 = groups.begin(grp);
        with_rows<kGemvRows>(int(groups.end(grp) - r0), [&](auto rows_c) {
          constexpr int mr = decltype(rows_c)::value;
          const F32Rows proto[1] = {F32Rows{buf.data()}};
          gemv_tile<mr, 1>(args, r0, full, proto);
        });
      }
    }
  });
}

// The bytes of the weight block (panel p, k in [pc, pc + kKc)) that gemm_block visits after
// (p, pc), for prefetching.
struct WeightBlock {
  const char* data = nullptr;
  int64_t bytes = 0;
  void prefetch_slice(int64_t i, int64_t n) const {
    const int64_t lines = (bytes + 63) / 64;
    for (int64_t l = lines * i / n; l < lines * (i + 1) / n; ++l) __builtin_prefetch(data + l * 64, 0, 2);
  }
};

WeightBlock next_block(const PackedWeight& w, int64_t p, int64_t pc, int64_t jc, int64_t je, int64_t p1) {
  int64_t np = p + 1, npc = pc;
  if (np == je) {
    np = jc;
    npc = pc + kKc;
    if (npc >= w.k) {
      np = je;
      npc = 0;
    }
  }
  if (np >= p1) return {};
  // Within a panel of width wp the bytes of k in [k0, k1) are wp * row_bytes(k1 - k0) from
  // wp * row_bytes(k0) (Q8/Q4 blocks included, as pc is a multiple of 32).
  const int64_t kc = std::min(kKc, w.k - npc);
  const size_t wp = size_t(w.width(np));
  return {reinterpret_cast<const char*>(w.panel(np)) + wp * row_bytes(w.dtype, npc),
          int64_t(wp * row_bytes(w.dtype, kc))};
}

// Per-thread GEMM over rows [m0, m1) and panels [p0, p1). Loops, outer to inner:
//   M tile (<= kMcMax rows): x packed once for all K             (MC x K floats, L2/L3)
//   N chunk of kNcPanels panels: partial sums over K blocks in a contiguous buffer that stays
//     in L2 (in y itself the rows are N floats apart, and with N a power of two they all fall
//     into a few cache sets: that cost 8% of the GEMM)
//   K block of kKc: each panel's KC x 32 f32 block stays in L1 (read in place for F32, else
//     decoded once into a buffer)
//   micro-tiles of kGemmRows rows down the M tile: the FMA kernel, packed x streamed from L2
void gemm_block(const float* x, const PackedWeight& w, const float* bias, float* y, bool accumulate, int64_t m0,
                int64_t m1, int64_t p0, int64_t p1) {
  const int64_t K = w.k, N = w.n;
  const int64_t tiles = (m1 - m0 + kMcMax - 1) / kMcMax;
  const int64_t mc_max = std::min(kMcMax, m1 - m0);
  constexpr int64_t ldp = kNcPanels * kPanel;  // row stride of the partial sums
  // Kept per thread across calls: the packed x of a prefill is megabytes, and fresh pages on
  // every call cost page faults.
  thread_local std::vector<float> apack, bbuf, partial;
  apack.resize(std::max(apack.size(), size_t(mc_max * K)));
  bbuf.resize(size_t(kKc * kPanel));
  if (K > kKc) partial.resize(std::max(partial.size(), size_t(mc_max * ldp)));
  for (int64_t t = 0; t < tiles; ++t) {
    // Balanced M tiles.
    const int64_t mt0 = m0 + (m1 - m0) * t / tiles, mt1 = m0 + (m1 - m0) * (t + 1) / tiles;
    const int64_t mc = mt1 - mt0;
    // Micro-panel i of K block pc at apack + pc * mc + i * kc, k-major.
    for (int64_t pc = 0; pc < K; pc += kKc) {
      const int64_t kc = std::min(kKc, K - pc);
      for (int64_t i = 0; i < mc; i += kGemmRows) {
        const int mr = int(std::min<int64_t>(kGemmRows, mc - i));
        pack_rows(x + (mt0 + i) * K, K, mr, pc, kc, apack.data() + pc * mc + i * kc);
      }
    }
    for (int64_t jc = p0; jc < p1; jc += kNcPanels) {
      const int64_t je = std::min(p1, jc + kNcPanels);
      for (int64_t pc = 0; pc < K; pc += kKc) {
        const int64_t kc = std::min(kKc, K - pc);
        const bool first = pc == 0, last = pc + kc == K;
        const float* a = apack.data() + pc * mc;
        for (int64_t p = jc; p < je; ++p) {
          const int width = w.width(p);
          const float* panel;
          if (w.dtype == DType::F32 && width == kPanel) {
            panel = reinterpret_cast<const float*>(w.panel(p)) + pc * kPanel;
          } else if (width == kPanel) {
            with_reader(w.dtype, [&](auto r) {
              auto rows = decltype(r)::at(w.panel(p));
              decode_rows(rows, pc, pc + kc, bbuf.data());
            });
            panel = bbuf.data();
          } else {
            decode_panel(w, p, pc, kc, bbuf.data());
            panel = bbuf.data();
          }
          const int64_t col = (p - jc) * kPanel;  // in the partial sums
          // The next weight block comes from memory: fetch it into L2 while this one computes, a
          // slice per micro-tile (unhidden, it cost 5% of an F32 GEMM).
          const WeightBlock next = next_block(w, p, pc, jc, je, p1);
          const int64_t tiles_here = (mc + kGemmRows - 1) / kGemmRows;
          for (int64_t i = 0; i < mc; i += kGemmRows) {
            const int mr = int(std::min<int64_t>(kGemmRows, mc - i));
            next.prefetch_slice(i / kGemmRows, tiles_here);
            float* part = partial.data() + i * ldp + col;
            with_rows<kGemmRows>(mr, [&](auto rows_c) {
              constexpr int r = decltype(rows_c)::value;
              Acc<r> acc[1];
              zero<r>(acc[0]);
              F32Rows rows[1] = {F32Rows{panel}};
              dot_panels<r, 1>(a + i * kc, rows, 0, kc, acc);
              if (last) {
                store_tile<r>(acc[0], y + (mt0 + i) * N + p * kPanel, N, width, first ? nullptr : part, ldp,
                              bias ? bias + p * kPanel : nullptr, accumulate);
              } else {
                store_tile<r>(acc[0], part, ldp, kPanel, nullptr, 0, nullptr, !first);
              }
            });
          }
        }
      }
    }
  }
}

void gemm_path(const Tensor& x, const PackedWeight& w, const float* bias, Tensor& y, bool accumulate) {
  const int64_t M = x.dim(0);
  const float* xd = x.data<float>();
  float* yd = y.data<float>();
  const int threads = num_threads();
  if (M >= kMinRowsPerThread * threads) {
    parallel_for(M, kMinRowsPerThread, [&](int64_t m0, int64_t m1) {
      gemm_block(xd, w, bias, yd, accumulate, m0, m1, 0, w.panels());
    });
  } else {
    parallel_for(w.panels(), 1, [&](int64_t p0, int64_t p1) {
      gemm_block(xd, w, bias, yd, accumulate, 0, M, p0, p1);
    });
  }
}

// Storage for a prepared weight of `bytes`: from 2 MiB up it is 2 MiB-aligned and asks for
// transparent huge pages (THP is "madvise" on common distributions), which saves the decode a
// TLB walk per 4 KiB: +4% on F32, +14% on Q4 GEMV bandwidth on this machine. The partial last
// 2 MiB stays on small pages and the alignment gap is never touched, so nothing is wasted.
Tensor allocate_weight(int64_t n, int64_t k, DType dtype) {
  const size_t bytes = size_t(n) * row_bytes(dtype, k);
  constexpr size_t kHuge = size_t(2) << 20;
#ifdef __linux__
  if (bytes >= kHuge) {
    void* p = nullptr;
    if (posix_memalign(&p, kHuge, bytes) != 0 || !p) {
      throw OutOfMemory("out of host memory allocating a " + std::to_string(bytes) + "-byte linear weight");
    }
    madvise(p, bytes / kHuge * kHuge, MADV_HUGEPAGE);  // advice only: failure is harmless
    return Tensor::wrap(p, {n, k}, dtype, Device::CPU, std::shared_ptr<void>(p, std::free));
  }
#endif
  return Tensor::empty({n, k}, dtype);
}

}  // namespace

Tensor prepare_linear_weight(const Tensor& w, DType dtype) {
  if (!supported_weight_dtype(dtype)) {
    throw Unsupported(std::string("prepare_linear_weight (cpu): weight dtype ") + dtype_name(dtype));
  }
  if (!is_float(w.dtype())) {
    throw InvalidArgument("prepare_linear_weight (cpu): source " + w.describe() + " is not F32/BF16/F16");
  }
  const int64_t N = w.dim(0), K = w.dim(1);
  Tensor out = allocate_weight(N, K, dtype);
  const PackedWeight pw{out.data<uint8_t>(), dtype, N, K};
  const bool quantized = block_elems(dtype) > 1;
  std::atomic<bool> non_finite{false};
  // Exceptions must not leave an OpenMP region: record failures and throw after.
  parallel_for(pw.panels(), 1, [&](int64_t p0, int64_t p1) {
    std::vector<float> rows;
    for (int64_t p = p0; p < p1; ++p) {
      const int width = pw.width(p);
      const float* src;
      if (w.dtype() == DType::F32) {
        src = w.data<float>() + p * kPanel * K;
      } else {
        rows.resize(size_t(width * K));
        const uint16_t* s = w.data<uint16_t>() + p * kPanel * K;
        for (size_t i = 0; i < rows.size(); ++i) rows[i] = w.dtype() == DType::BF16 ? bf16_to_f32(s[i]) : f16_to_f32(s[i]);
        src = rows.data();
      }
      if (quantized) {
        bool ok = true;
        for (int64_t i = 0; i < width * K; ++i) ok &= std::isfinite(src[i]);
        if (!ok) {
          non_finite = true;
          continue;
        }
      }
      pack_panel(src, width, K, dtype, const_cast<uint8_t*>(pw.panel(p)));
    }
  });
  if (non_finite) {
    throw InvalidArgument(std::string("prepare_linear_weight: cannot quantise a weight with non-finite values to ") +
                          dtype_name(dtype));
  }
  return out;
}

void linear(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& y, bool accumulate) {
  if (x.dtype() != DType::F32) throw Unsupported("linear (cpu): activations must be F32, got " + x.describe());
  if (!supported_weight_dtype(w.dtype())) throw Unsupported("linear (cpu): weight dtype " + w.describe());
  const PackedWeight pw{w.data<uint8_t>(), w.dtype(), w.dim(0), w.dim(1)};
  const float* b = bias ? bias->data<float>() : nullptr;
  if (x.dim(0) == 0 || pw.n == 0) return;
  if (x.dim(0) <= kGemvMaxRows || pw.k == 0) {
    gemv_path(x, pw, b, y, accumulate);
  } else {
    gemm_path(x, pw, b, y, accumulate);
  }
}

}  // namespace falcon::ops::cpu
