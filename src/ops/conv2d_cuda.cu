// CUDA conv2d as an implicit GEMM: out[Co, P] = W[Co, Ci k k] . patches[Ci k k, P] (P output
// pixels). Patches are gathered on load (zero or reflect padding) and, for fused 1x1
// convolutions, read through the per-channel affine map and SiLU. Two kernels:
//
// - F32 (the parity mode): 64 x 64 tiles, K in steps of 16, 4 x 4 outputs per thread, f32 FMAs.
//   Output moments by channel_moments over the result.
// - TF32: tensor cores (mma.sync m16n8k8, inputs rounded to TF32 to nearest, f32 accumulation),
//   128 x 128 tiles, 8 warps of 64 x 32, K in steps of 32, double-buffered through registers so
//   that the GroupNorm + SiLU of the input is applied once per element on its way to shared
//   memory. The output moments come from the epilogue: each tile writes (mean, M2) of every
//   channel over its pixels, taken from the registers, and a small kernel merges them in double
//   (Chan's formula), so a fused convolution makes no extra pass over its output.
//
// An in-place 1x1 (out aliasing x) goes through a temporary unless one TF32 tile row covers all
// output channels (then every block reads its pixels' inputs before it writes them).
#include <algorithm>
#include <cstdint>

#include "ops/conv2d.h"
#include "ops/cuda_common.cuh"
#include "ops/group_norm.h"
#include "ops/grow_buffer_cuda.cuh"

namespace falcon::ops::cuda {
namespace {
constexpr int BM = 64, BN = 64, BK = 16;

__device__ __forceinline__ int64_t reflect(int64_t i, int64_t n) {
  if (i < 0) i = -i;
  if (i >= n) i = 2 * (n - 1) - i;
  return i;
}

__global__ void __launch_bounds__(256) conv_kernel(const float* x, const float* wt, const float* bias, float* out,
                                                   const float* in_scale, const float* in_shift, bool in_silu,
                                                   int64_t ci, int64_t H, int64_t W, int64_t co, int64_t Ho,
                                                   int64_t Wo, int kk, int pad, bool reflect_pad, bool accumulate) {
  __shared__ float As[BK][BM];
  __shared__ float Bs[BK][BN + 4];
  const int64_t K = ci * kk * kk, P = Ho * Wo;
  const int64_t m0 = int64_t(blockIdx.y) * BM, n0 = int64_t(blockIdx.x) * BN;
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  float acc[4][4] = {};
  for (int64_t k0 = 0; k0 < K; k0 += BK) {
    for (int e = tid; e < BM * BK; e += 256) {
      const int mm = e / BK, kq = e % BK;
      const int64_t m = m0 + mm, kx = k0 + kq;
      As[kq][mm] = m < co && kx < K ? wt[m * K + kx] : 0.f;
    }
    for (int e = tid; e < BN * BK; e += 256) {
      const int kq = e / BN, nn = e % BN;
      const int64_t kx = k0 + kq, n = n0 + nn;
      float val = 0.f;
      if (kk == 1 && pad == 0) {  // 1x1: no index division (64-bit divisions dominated this loop)
        if (kx < K && n < P) {
          val = x[kx * P + n];
          if (in_scale) {
            val = fmaf(val, in_scale[kx], in_shift[kx]);
            if (in_silu) val = val / (1.f + expf(-val));
          }
        }
      } else if (kx < K && n < P) {
        const int64_t i = kx / (kk * kk), dy = (kx / kk) % kk, dx = kx % kk;
        int64_t sy = n / Wo + dy - pad, sx = n % Wo + dx - pad;
        bool ok = true;
        if (reflect_pad) {
          sy = reflect(sy, H);
          sx = reflect(sx, W);
        } else {
          ok = sy >= 0 && sy < H && sx >= 0 && sx < W;
        }
        if (ok) {
          val = x[(i * H + sy) * W + sx];
          if (in_scale) {
            val = fmaf(val, in_scale[i], in_shift[i]);
            if (in_silu) val = val / (1.f + expf(-val));
          }
        }
      }
      Bs[kq][nn] = val;
    }
    __syncthreads();
#pragma unroll
    for (int kq = 0; kq < BK; ++kq) {
      float a[4], b[4];
#pragma unroll
      for (int r = 0; r < 4; ++r) a[r] = As[kq][ty + 16 * r];
#pragma unroll
      for (int s = 0; s < 4; ++s) b[s] = Bs[kq][tx + 16 * s];
#pragma unroll
      for (int r = 0; r < 4; ++r)
#pragma unroll
        for (int s = 0; s < 4; ++s) acc[r][s] = fmaf(a[r], b[s], acc[r][s]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int r = 0; r < 4; ++r) {
    const int64_t m = m0 + ty + 16 * r;
    if (m >= co) continue;
#pragma unroll
    for (int s = 0; s < 4; ++s) {
      const int64_t n = n0 + tx + 16 * s;
      if (n >= P) continue;
      float v = acc[r][s] + (bias ? bias[m] : 0.f);
      if (accumulate) v += out[m * P + n];
      out[m * P + n] = v;
    }
  }
}

// ---- TF32 tensor-core kernel ------------------------------------------------------------------

namespace tc {
constexpr int BM = 128, BN = 128, BK = 32, kThreads = 256;
constexpr int AS = BK + 4;  // A row stride (floats): the fragment loads hit 32 distinct banks
constexpr int BS = BN + 8;  // B row stride (floats): likewise
constexpr int kAStage = BM * AS, kBStage = BK * BS;
// Two stages of A and B, then the epilogue's reduction rows [4][BM] and tile means [BM].
constexpr int kSmemFloats = 2 * (kAStage + kBStage) + 5 * BM;
// Fused input transforms keep scale and shift of every input channel in shared memory.
constexpr int64_t kMaxFusedChannels = 12288;

struct Args {
  const float* x;
  const float* w;
  const float* bias;
  float* out;
  const float* in_scale;
  const float* in_shift;
  float2* partials;  // [Co][tiles_n] (mean, M2) per tile, or null
  float* split_out;  // split-K: [splits][Co][P] raw sums (no bias, no accumulate), or null
  int ci, H, W, co, Wo, P, K, kk, pad, tiles_n, k_per_split;
  bool reflect, silu, accumulate, vec_a, vec_b, vec_out;
};

__device__ __forceinline__ uint32_t to_tf32(float v) {
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(v));
  return r;
}

__device__ __forceinline__ void mma_tf32(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ int reflect_idx(int i, int n) {
  if (i < 0) i = -i;
  if (i >= n) i = 2 * (n - 1) - i;
  return i;
}

// Weights W[m, k0 .. k0 + 32) of rows m0 .. m0 + 128 into registers (zero outside).
__device__ __forceinline__ void load_a(const Args& p, int m0, int k0, float (&r)[16]) {
  const int tid = threadIdx.x;
  if (p.vec_a) {
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int e = tid + kThreads * i, m = m0 + (e >> 3), k = k0 + ((e & 7) << 2);
      float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
      if (m < p.co && k < p.K) v = __ldg(reinterpret_cast<const float4*>(p.w + size_t(m) * p.K + k));
      r[4 * i] = v.x;
      r[4 * i + 1] = v.y;
      r[4 * i + 2] = v.z;
      r[4 * i + 3] = v.w;
    }
  } else {
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      const int e = tid + kThreads * i, m = m0 + (e >> 5), k = k0 + (e & 31);
      r[i] = m < p.co && k < p.K ? __ldg(p.w + size_t(m) * p.K + k) : 0.f;
    }
  }
}

__device__ __forceinline__ void store_a(const Args& p, float* As, const float (&r)[16]) {
  const int tid = threadIdx.x;
  if (p.vec_a) {
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int e = tid + kThreads * i;
      const uint4 u = make_uint4(to_tf32(r[4 * i]), to_tf32(r[4 * i + 1]), to_tf32(r[4 * i + 2]), to_tf32(r[4 * i + 3]));
      *reinterpret_cast<uint4*>(As + (e >> 3) * AS + ((e & 7) << 2)) = u;
    }
  } else {
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      const int e = tid + kThreads * i;
      As[(e >> 5) * AS + (e & 31)] = __uint_as_float(to_tf32(r[i]));
    }
  }
}

// Patch rows k0 .. k0 + 32 of pixels n0 .. n0 + 128 into registers, raw (zero outside the image
// or the matrix). Vector path (1x1, P % 4 == 0): thread takes 4 pixels of rows tid/32 + 8i.
// Gather path: thread takes pixel tid % 128 (at oy, ox) of rows tid/128 + 2i.
template <int KS>
__device__ __forceinline__ void load_b(const Args& p, int n0, int k0, int oy, int ox, float (&r)[16]) {
  const int tid = threadIdx.x;
  if (KS == 1 && p.vec_b) {
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int e = tid + kThreads * i, k = k0 + (e >> 5), n = n0 + ((e & 31) << 2);
      float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
      if (k < p.K && n < p.P) v = __ldg(reinterpret_cast<const float4*>(p.x + size_t(k) * p.P + n));
      r[4 * i] = v.x;
      r[4 * i + 1] = v.y;
      r[4 * i + 2] = v.z;
      r[4 * i + 3] = v.w;
    }
    return;
  }
  const int n = n0 + (tid & 127);
  const int kk = KS == 0 ? p.kk : KS;
  // Row k = (channel c, tap dy, dx), stepped by 2 per element instead of divided each time.
  int c = 0, dy = 0, dx = 0;
  if (KS != 1) {
    const int k = k0 + (tid >> 7);
    c = k / (kk * kk);
    const int t = k - c * kk * kk;
    dy = t / kk;
    dx = t - dy * kk;
  }
#pragma unroll
  for (int i = 0; i < 16; ++i) {
    const int k = k0 + (tid >> 7) + 2 * i;
    float v = 0.f;
    if (k < p.K && n < p.P) {
      if (KS == 1) {
        v = __ldg(p.x + size_t(k) * p.P + n);
      } else {
        int sy = oy + dy - p.pad, sx = ox + dx - p.pad;
        bool ok = true;
        if (p.reflect) {
          sy = reflect_idx(sy, p.H);
          sx = reflect_idx(sx, p.W);
        } else {
          ok = sy >= 0 && sy < p.H && sx >= 0 && sx < p.W;
        }
        if (ok) v = __ldg(p.x + (size_t(c) * p.H + sy) * p.W + sx);
      }
    }
    r[i] = v;
    if (KS != 1) {  // kk >= 2: one wrap at most
      dx += 2;
      if (dx >= kk) {
        dx -= kk;
        if (++dy == kk) {
          dy = 0;
          ++c;
        }
      }
    }
  }
}

// The result is rounded to TF32 (2^-11) right after, so SiLU takes the fast exponential and
// reciprocal (errors ~2^-21): the accurate ones cost more than the MMAs of the tile.
__device__ __forceinline__ float transform(float v, float s, float t, bool silu) {
  v = fmaf(v, s, t);
  return silu ? v * __frcp_rn(1.f + __expf(-v)) : v;
}

// Stores what load_b read, through the fused input transform (1x1 only: channel = row), as TF32.
template <int KS>
__device__ __forceinline__ void store_b(const Args& p, int n0, int k0, float* Bs, const float* sc, const float* sh,
                                        float (&r)[16]) {
  const int tid = threadIdx.x;
  const bool fused = KS == 1 && p.in_scale != nullptr;
  if (KS == 1 && p.vec_b) {
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int e = tid + kThreads * i, row = e >> 5, k = k0 + row, col = (e & 31) << 2;
      if (fused && k < p.K && n0 + col < p.P) {
#pragma unroll
        for (int q = 0; q < 4; ++q) r[4 * i + q] = transform(r[4 * i + q], sc[k], sh[k], p.silu);
      }
      const uint4 u = make_uint4(to_tf32(r[4 * i]), to_tf32(r[4 * i + 1]), to_tf32(r[4 * i + 2]), to_tf32(r[4 * i + 3]));
      *reinterpret_cast<uint4*>(Bs + row * BS + col) = u;
    }
    return;
  }
  const int col = tid & 127;
#pragma unroll
  for (int i = 0; i < 16; ++i) {
    const int row = (tid >> 7) + 2 * i, k = k0 + row;
    float v = r[i];
    if (fused && k < p.K && n0 + col < p.P) v = transform(v, sc[k], sh[k], p.silu);
    Bs[row * BS + col] = __uint_as_float(to_tf32(v));
  }
}

// Per-channel (mean, M2) of one output tile (the mma fragments in acc): sums over a thread's
// 8 columns, the 4 lanes of a row (shuffles), then the 4 warp columns (shared memory `red`,
// [4][BM]); M2 around the tile mean. Channel m0 + r's summary goes to
// partials[(m0 + r) * stride + tile]. Every thread of the block calls it (it synchronises).
__device__ __forceinline__ void tile_moments(const float (&acc)[4][4][4], int n0, int P, int m0, int co,
                                             float2* partials, int stride, int tile, float* red, float* tile_mean) {
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, gid = lane >> 2, tig = lane & 3;
  const int wm = warp >> 2, wn = warp & 3;
  const int count = min(BN, P - n0);
  for (int pass = 0; pass < 2; ++pass) {
#pragma unroll
    for (int i = 0; i < 4; ++i) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int row = wm * 64 + i * 16 + h * 8 + gid;
        const float mu = pass ? tile_mean[row] : 0.f;
        float s = 0.f;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const int n = n0 + wn * 32 + j * 8 + 2 * tig;
#pragma unroll
          for (int q = 0; q < 2; ++q) {
            const float d = acc[i][j][2 * h + q] - mu;
            if (n + q < P) s += pass ? d * d : d;
          }
        }
        s += __shfl_xor_sync(0xffffffffu, s, 1);
        s += __shfl_xor_sync(0xffffffffu, s, 2);
        if (tig == 0) red[wn * BM + row] = s;
      }
    }
    __syncthreads();
    if (tid < BM) {
      const float total = red[tid] + red[BM + tid] + red[2 * BM + tid] + red[3 * BM + tid];
      if (pass == 0) {
        tile_mean[tid] = total / float(count);
      } else if (m0 + tid < co) {
        partials[size_t(m0 + tid) * stride + tile] = make_float2(tile_mean[tid], total);
      }
    }
    __syncthreads();
  }
}

template <int KS, bool SPLIT>
__global__ void __launch_bounds__(kThreads, 2) conv_tf32_kernel(const Args p) {
  extern __shared__ float4 smem4[];
  float* smem = reinterpret_cast<float*>(smem4);
  float* const as0 = smem;
  float* const bs0 = smem + 2 * kAStage;
  float* const red = smem + 2 * (kAStage + kBStage);  // [4][BM] per-warp-column row sums
  float* const tile_mean = red + 4 * BM;              // [BM]
  float* const sc = tile_mean + BM;                   // [K] fused input scale, then shift
  float* const sh = sc + p.K;

  const int n_tile = blockIdx.x, n0 = n_tile * BN, m0 = blockIdx.y * BM;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, gid = lane >> 2, tig = lane & 3;
  const int wm = warp >> 2, wn = warp & 3;  // warp tile: rows wm*64 .. +64, columns wn*32 .. +32
  if (KS == 1 && p.in_scale) {
    for (int i = tid; i < p.K; i += kThreads) {
      sc[i] = p.in_scale[i];
      sh[i] = p.in_shift[i];
    }
  }
  int oy = 0, ox = 0;
  if (KS != 1) {
    const int n = n0 + (tid & 127);
    oy = n / p.Wo;
    ox = n - oy * p.Wo;
  }

  float acc[4][4][4];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int q = 0; q < 4; ++q) acc[i][j][q] = 0.f;

  float ra[16], rb[16];
  // Split-K (blockIdx.z): rows kb .. kb + k_per_split of the patches, a whole number of steps
  // (k_per_split is a multiple of BK), so only the last split meets the end of K.
  const int kb = SPLIT ? blockIdx.z * p.k_per_split : 0;
  const int nk = (min(p.K - kb, p.k_per_split) + BK - 1) / BK;
  load_a(p, m0, kb, ra);
  load_b<KS>(p, n0, kb, oy, ox, rb);
  __syncthreads();  // sc / sh
  store_a(p, as0, ra);
  store_b<KS>(p, n0, kb, bs0, sc, sh, rb);
  __syncthreads();

  for (int kt = 0; kt < nk; ++kt) {
    const int cur = kt & 1;
    const bool more = kt + 1 < nk;
    if (more) {  // the next step's loads are in flight during this step's MMAs
      load_a(p, m0, kb + (kt + 1) * BK, ra);
      load_b<KS>(p, n0, kb + (kt + 1) * BK, oy, ox, rb);
    }
    const float* A = as0 + cur * kAStage + (wm * 64 + gid) * AS + tig;
    const float* B = bs0 + cur * kBStage + tig * BS + wn * 32 + gid;
#pragma unroll
    for (int ks = 0; ks < BK / 8; ++ks) {
      uint32_t a[4][4], b[4][2];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const float* ap = A + i * 16 * AS + ks * 8;
        a[i][0] = __float_as_uint(ap[0]);
        a[i][1] = __float_as_uint(ap[8 * AS]);
        a[i][2] = __float_as_uint(ap[4]);
        a[i][3] = __float_as_uint(ap[8 * AS + 4]);
      }
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const float* bp = B + ks * 8 * BS + j * 8;
        b[j][0] = __float_as_uint(bp[0]);
        b[j][1] = __float_as_uint(bp[4 * BS]);
      }
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) mma_tf32(acc[i][j], a[i], b[j][0], b[j][1]);
    }
    if (more) {
      store_a(p, as0 + (cur ^ 1) * kAStage, ra);
      store_b<KS>(p, n0, kb + (kt + 1) * BK, bs0 + (cur ^ 1) * kBStage, sc, sh, rb);
    }
    __syncthreads();
  }

  // Epilogue. Thread holds rows wm*64 + i*16 + h*8 + gid, columns wn*32 + j*8 + 2*tig + {0, 1}.
  // A split of K writes its raw sums to its slice of the split buffer (split_reduce_kernel
  // adds bias and residual).
  const bool split = SPLIT;
  float* const obase = split ? p.split_out + size_t(blockIdx.z) * p.co * p.P : p.out;
  const bool accumulate = p.accumulate && !split;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int m = m0 + wm * 64 + i * 16 + h * 8 + gid;
      if (m >= p.co) continue;
      const float bv = p.bias && !split ? __ldg(p.bias + m) : 0.f;
      float* orow = obase + size_t(m) * p.P;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int n = n0 + wn * 32 + j * 8 + 2 * tig;
        float v0 = acc[i][j][2 * h] + bv, v1 = acc[i][j][2 * h + 1] + bv;
        if (p.vec_out) {
          if (n < p.P) {  // P even: n + 1 < P too
            if (accumulate) {
              const float2 o = *reinterpret_cast<const float2*>(orow + n);
              v0 += o.x;
              v1 += o.y;
            }
            *reinterpret_cast<float2*>(orow + n) = make_float2(v0, v1);
          }
        } else {
          if (n < p.P) {
            if (accumulate) v0 += orow[n];
            orow[n] = v0;
          }
          if (n + 1 < p.P) {
            if (accumulate) v1 += orow[n + 1];
            orow[n + 1] = v1;
          }
        }
        acc[i][j][2 * h] = v0;
        acc[i][j][2 * h + 1] = v1;
      }
    }
  }
  if (p.partials) tile_moments(acc, n0, p.P, m0, p.co, p.partials, p.tiles_n, n_tile, red, tile_mean);
}

// Chan's parallel merge of (count, mean, M2) summaries, in double.
__device__ __forceinline__ void chan_merge(double& n, double& mean, double& m2, double nb, double mb, double m2b) {
  if (nb == 0) return;
  const double nt = n + nb, d = mb - mean;
  mean += d * (nb / nt);
  m2 += m2b + d * d * (n * nb / nt);
  n = nt;
}

// moments[c] = (mean, M2 / P) of channel c from its tiles' summaries. Block per channel.
__global__ void merge_moments_kernel(const float2* partials, int tiles, int P, float* moments) {
  constexpr int kT = 256;
  const int c = blockIdx.x;
  double n = 0, mean = 0, m2 = 0;
  for (int t = threadIdx.x; t < tiles; t += kT) {
    const float2 s = partials[size_t(c) * tiles + t];
    chan_merge(n, mean, m2, double(min(BN, P - t * BN)), s.x, s.y);
  }
  __shared__ double sn[kT], sm[kT], sq[kT];
  sn[threadIdx.x] = n;
  sm[threadIdx.x] = mean;
  sq[threadIdx.x] = m2;
  __syncthreads();
  for (int step = kT / 2; step > 0; step /= 2) {
    if (int(threadIdx.x) < step) {
      const int o = threadIdx.x + step;
      chan_merge(sn[threadIdx.x], sm[threadIdx.x], sq[threadIdx.x], sn[o], sm[o], sq[o]);
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    moments[2 * c] = float(sm[0]);
    moments[2 * c + 1] = sn[0] > 0 ? float(sq[0] / sn[0]) : 0.f;
  }
}

// out = (accumulate ? out : 0) + bias + the splits' sums, added in split order (deterministic).
__global__ void split_reduce_kernel(const float* part, const float* bias, float* out, int co, int P, int splits,
                                    bool accumulate) {
  const size_t n = size_t(co) * P, stride = size_t(gridDim.x) * blockDim.x;
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    float v = 0.f;
    for (int s = 0; s < splits; ++s) v += part[size_t(s) * n + i];
    if (bias) v += bias[i / P];
    out[i] = accumulate ? out[i] + v : v;
  }
}

bool aligned(const void* p, size_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

template <int KS, bool SPLIT>
void launch(const Args& a, dim3 grid, size_t smem) {
  FALCON_CUDA_CHECK(
      cudaFuncSetAttribute(conv_tf32_kernel<KS, SPLIT>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  conv_tf32_kernel<KS, SPLIT><<<grid, kThreads, smem, stream()>>>(a);
  FALCON_CUDA_CHECK_LAUNCH("conv_tf32_kernel");
}


// ---- Pointwise (1x1, Ci and Co <= 128, P % 4 == 0) TF32 kernel: persistent -------------------
// One block per SM walks its tiles of 128 pixels. The weights sit in shared memory (TF32) for
// the whole kernel; the next tile's inputs stream in by cp.async (zero-filled past P) while the
// current one is transformed in place (GroupNorm + SiLU, TF32 rounding), multiplied and written,
// and the residual of an accumulating convolution is loaded into registers before the MMAs, so
// HBM always has a tile of requests in flight.
constexpr int kPwMaxC = 128;

struct PwArgs {
  const float* x;
  const float* w;
  const float* bias;
  float* out;
  const float* in_scale;
  const float* in_shift;
  float2* partials;
  int ci, co, kp, P, tiles;
  bool silu, accumulate;
};

__device__ __forceinline__ void cp_async16(float* dst, const float* src, bool valid) {
  const unsigned d = unsigned(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(src), "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ __forceinline__ void cp_async_wait_1() { asm volatile("cp.async.wait_group 1;\n" ::: "memory"); }

// Rows 0 .. ci of the tile at pixel n0 into buf (16-byte chunks; past P zero-filled).
__device__ __forceinline__ void pw_issue(const PwArgs& p, float* buf, int n0) {
  for (int e = threadIdx.x; e < p.ci * (BN / 4); e += kThreads) {
    const int row = e >> 5, n = n0 + ((e & 31) << 2);
    const bool valid = n < p.P;
    cp_async16(buf + row * BS + ((e & 31) << 2), valid ? p.x + size_t(row) * p.P + n : p.x, valid);
  }
}

__global__ void __launch_bounds__(kThreads, 1) conv_pw_tf32_kernel(const PwArgs p) {
  extern __shared__ float4 smem4[];
  float* const ws = reinterpret_cast<float*>(smem4);  // [BM][kp + 4] TF32 weights
  const int wst = p.kp + 4;
  float* const bufs = ws + BM * wst;               // 2 x [kp][BS]
  const int bstage = p.kp * BS;
  float* const sc = bufs + 2 * bstage;             // [kp] fused scale, then shift
  float* const sh = sc + p.kp;
  float* const red = sh + p.kp;                    // [4][BM]
  float* const tile_mean = red + 4 * BM;           // [BM]

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, gid = lane >> 2, tig = lane & 3;
  const int wm = warp >> 2, wn = warp & 3;
  if (int(blockIdx.x) < p.tiles) pw_issue(p, bufs, blockIdx.x * BN);
  cp_async_commit();
  for (int i = tid; i < BM * wst; i += kThreads) {
    const int m = i / wst, k = i - m * wst;
    ws[i] = __uint_as_float(to_tf32(m < p.co && k < p.ci ? p.w[size_t(m) * p.ci + k] : 0.f));
  }
  for (int i = tid; i < 2 * (p.kp - p.ci) * BS; i += kThreads) {  // rows ci .. kp stay zero
    const int stage = i / ((p.kp - p.ci) * BS), r = i - stage * (p.kp - p.ci) * BS;
    bufs[stage * bstage + p.ci * BS + r] = 0.f;
  }
  for (int i = tid; i < p.kp; i += kThreads) {
    sc[i] = p.in_scale && i < p.ci ? p.in_scale[i] : 1.f;
    sh[i] = p.in_shift && i < p.ci ? p.in_shift[i] : 0.f;
  }
  __syncthreads();

  for (int it = 0, tile = blockIdx.x; tile < p.tiles; ++it, tile += gridDim.x) {
    float* const buf = bufs + (it & 1) * bstage;
    const int n0 = tile * BN, next = tile + gridDim.x;
    if (next < p.tiles) pw_issue(p, bufs + ((it + 1) & 1) * bstage, next * BN);
    cp_async_commit();
    // The residual at this thread's output fragments, in flight during the MMAs.
    float2 res[4][2][4];
    if (p.accumulate) {
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int m = wm * 64 + i * 16 + h * 8 + gid;
#pragma unroll
          for (int j = 0; j < 4; ++j) {
            const int n = n0 + wn * 32 + j * 8 + 2 * tig;
            res[i][h][j] = m < p.co && n < p.P ? *reinterpret_cast<const float2*>(p.out + size_t(m) * p.P + n)
                                               : make_float2(0.f, 0.f);
          }
        }
    }
    cp_async_wait_1();
    __syncthreads();
    for (int e = tid; e < p.ci * (BN / 4); e += kThreads) {  // in place: transform, TF32
      const int row = e >> 5;
      float4* q4 = reinterpret_cast<float4*>(buf + row * BS + ((e & 31) << 2));
      float4 v = *q4;
      if (p.in_scale) {
        v.x = transform(v.x, sc[row], sh[row], p.silu);
        v.y = transform(v.y, sc[row], sh[row], p.silu);
        v.z = transform(v.z, sc[row], sh[row], p.silu);
        v.w = transform(v.w, sc[row], sh[row], p.silu);
      }
      *q4 = make_float4(__uint_as_float(to_tf32(v.x)), __uint_as_float(to_tf32(v.y)), __uint_as_float(to_tf32(v.z)),
                        __uint_as_float(to_tf32(v.w)));
    }
    __syncthreads();

    float acc[4][4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j)
#pragma unroll
        for (int q = 0; q < 4; ++q) acc[i][j][q] = 0.f;
    const float* A = ws + (wm * 64 + gid) * wst + tig;
    const float* B = buf + tig * BS + wn * 32 + gid;
    for (int k0 = 0; k0 < p.kp; k0 += 8) {
      uint32_t a[4][4], b[4][2];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const float* ap = A + i * 16 * wst + k0;
        a[i][0] = __float_as_uint(ap[0]);
        a[i][1] = __float_as_uint(ap[8 * wst]);
        a[i][2] = __float_as_uint(ap[4]);
        a[i][3] = __float_as_uint(ap[8 * wst + 4]);
      }
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const float* bp = B + k0 * BS + j * 8;
        b[j][0] = __float_as_uint(bp[0]);
        b[j][1] = __float_as_uint(bp[4 * BS]);
      }
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) mma_tf32(acc[i][j], a[i], b[j][0], b[j][1]);
    }

#pragma unroll
    for (int i = 0; i < 4; ++i) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int m = wm * 64 + i * 16 + h * 8 + gid;
        const float bv = p.bias && m < p.co ? __ldg(p.bias + m) : 0.f;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const int n = n0 + wn * 32 + j * 8 + 2 * tig;
          float v0 = acc[i][j][2 * h] + bv, v1 = acc[i][j][2 * h + 1] + bv;
          if (p.accumulate) {
            v0 += res[i][h][j].x;
            v1 += res[i][h][j].y;
          }
          if (m < p.co && n < p.P)  // P % 4 == 0: n + 1 < P too
            *reinterpret_cast<float2*>(p.out + size_t(m) * p.P + n) = make_float2(v0, v1);
          acc[i][j][2 * h] = v0;
          acc[i][j][2 * h + 1] = v1;
        }
      }
    }
    if (p.partials) tile_moments(acc, n0, p.P, 0, p.co, p.partials, p.tiles, tile, red, tile_mean);
    __syncthreads();  // buf is refilled by the cp.async of the next iteration
  }
}

}  // namespace tc

void conv2d_tf32(const Tensor& x, const Tensor& w, const Tensor* bias, int padding, PadMode mode, Tensor& out,
                 bool accumulate, const Conv2dFusion& fusion) {
  const int64_t ci = x.dim(0), co = w.dim(0), kk = w.dim(2);
  const int64_t P = out.dim(1) * out.dim(2), K = ci * kk * kk;
  const bool aliased = out.raw() == x.raw();
  if (kk == 1 && padding == 0 && ci <= tc::kPwMaxC && co <= tc::kPwMaxC && P % 4 == 0 && tc::aligned(x.raw(), 16) &&
      tc::aligned(out.raw(), 16)) {
    tc::PwArgs a{};
    a.x = x.data<float>();
    a.w = w.data<float>();
    a.bias = bias ? bias->data<float>() : nullptr;
    a.out = out.data<float>();
    a.in_scale = fusion.in_scale ? fusion.in_scale->data<float>() : nullptr;
    a.in_shift = fusion.in_shift ? fusion.in_shift->data<float>() : nullptr;
    a.ci = int(ci);
    a.co = int(co);
    a.kp = int((ci + 7) / 8 * 8);
    a.P = int(P);
    a.tiles = int((P + tc::BN - 1) / tc::BN);
    a.silu = fusion.in_silu;
    a.accumulate = accumulate;
    a.partials = fusion.out_moments ? static_cast<float2*>(grow_buffer(GrowBuffer::ConvMoments,
                                                                       size_t(a.tiles) * size_t(co) * sizeof(float2)))
                                    : nullptr;
    const size_t smem =
        (size_t(tc::BM) * (a.kp + 4) + 2 * size_t(a.kp) * tc::BS + 2 * a.kp + 5 * tc::BM) * sizeof(float);
    FALCON_CUDA_CHECK(
        cudaFuncSetAttribute(tc::conv_pw_tf32_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    const int blocks = int(std::min<int64_t>(a.tiles, sm_count()));
    tc::conv_pw_tf32_kernel<<<blocks, tc::kThreads, smem, stream()>>>(a);
    FALCON_CUDA_CHECK_LAUNCH("conv_pw_tf32_kernel");
    if (fusion.out_moments) {
      tc::merge_moments_kernel<<<unsigned(co), 256, 0, stream()>>>(a.partials, a.tiles, a.P,
                                                                   fusion.out_moments->data<float>());
      FALCON_CUDA_CHECK_LAUNCH("merge_moments_kernel");
    }
    return;
  }
  Tensor tmp;
  if (aliased && co > tc::BM) {
    tmp = Tensor::empty(out.shape(), DType::F32, out.device());
    if (accumulate) tmp.copy_from(out);
  }
  Tensor& dst = tmp.defined() ? tmp : out;
  tc::Args a{};
  a.x = x.data<float>();
  a.w = w.data<float>();
  a.bias = bias ? bias->data<float>() : nullptr;
  a.out = dst.data<float>();
  a.in_scale = fusion.in_scale ? fusion.in_scale->data<float>() : nullptr;
  a.in_shift = fusion.in_shift ? fusion.in_shift->data<float>() : nullptr;
  a.ci = int(ci);
  a.H = int(x.dim(1));
  a.W = int(x.dim(2));
  a.co = int(co);
  a.Wo = int(out.dim(2));
  a.P = int(P);
  a.K = int(K);
  a.kk = int(kk);
  a.pad = padding;
  a.tiles_n = int((P + tc::BN - 1) / tc::BN);
  a.reflect = mode == PadMode::Reflect;
  a.silu = fusion.in_silu;
  a.accumulate = accumulate;
  a.vec_a = K % 4 == 0 && tc::aligned(a.w, 16);
  a.vec_b = kk == 1 && P % 4 == 0 && tc::aligned(a.x, 16);
  a.vec_out = P % 2 == 0 && tc::aligned(a.out, 8);
  a.partials = fusion.out_moments ? static_cast<float2*>(grow_buffer(GrowBuffer::ConvMoments,
                                                                     size_t(a.tiles_n) * size_t(co) * sizeof(float2)))
                                  : nullptr;
  // Few output tiles over a long K (conv_segm: 64 tiles, K = 9216): split K so that every SM
  // has work; partial sums go to a buffer and a second kernel adds them in a fixed order.
  const int64_t tiles = int64_t(a.tiles_n) * ((co + tc::BM - 1) / tc::BM);
  int64_t splits = std::min<int64_t>((2 * sm_count() + tiles - 1) / tiles, K / (4 * tc::BK));
  if (splits < 2 || fusion.out_moments || tmp.defined() || aliased) splits = 1;
  a.k_per_split = int((K + splits - 1) / splits + tc::BK - 1) / tc::BK * tc::BK;
  splits = (K + a.k_per_split - 1) / a.k_per_split;
  a.split_out = splits > 1 ? static_cast<float*>(
                                 grow_buffer(GrowBuffer::ConvSplitK, size_t(splits) * co * P * sizeof(float)))
                           : nullptr;
  const size_t smem = (tc::kSmemFloats + (a.in_scale ? 2 * K : 0)) * sizeof(float);
  const dim3 grid(unsigned(a.tiles_n), unsigned((co + tc::BM - 1) / tc::BM), unsigned(splits));
  // (A compile-time 3 x 3 spills registers; the runtime kernel size costs nothing measurable.)
  // (Split-K is its own instance: its block offsets would make the common one spill.)
  if (kk == 1) {
    splits > 1 ? tc::launch<1, true>(a, grid, smem) : tc::launch<1, false>(a, grid, smem);
  } else {
    splits > 1 ? tc::launch<0, true>(a, grid, smem) : tc::launch<0, false>(a, grid, smem);
  }
  if (splits > 1) {
    const int64_t n = co * P;
    tc::split_reduce_kernel<<<unsigned(std::min<int64_t>((n + 255) / 256, 8 * int64_t(sm_count()))), 256, 0,
                              stream()>>>(a.split_out, a.bias, a.out, a.co, a.P, int(splits), accumulate);
    FALCON_CUDA_CHECK_LAUNCH("split_reduce_kernel");
  }
  if (tmp.defined()) out.copy_from(tmp);
  if (fusion.out_moments) {
    tc::merge_moments_kernel<<<unsigned(co), 256, 0, stream()>>>(a.partials, a.tiles_n, a.P,
                                                                 fusion.out_moments->data<float>());
    FALCON_CUDA_CHECK_LAUNCH("merge_moments_kernel");
  }
}

}  // namespace

void conv2d(const Tensor& x, const Tensor& w, const Tensor* bias, int padding, PadMode mode, Tensor& out,
            bool accumulate, const Conv2dFusion& fusion, MathPrecision precision) {
  const int64_t ci = x.dim(0), H = x.dim(1), W = x.dim(2), co = w.dim(0), kk = w.dim(2);
  const int64_t Ho = out.dim(1), Wo = out.dim(2), P = Ho * Wo;
  if (P == 0 || co == 0) return;
  // The TF32 kernel indexes in 32 bits and keeps the fused channels' scale and shift in shared
  // memory; anything larger takes the f32 kernel.
  const int64_t limit = int64_t(1) << 31;
  if (precision == MathPrecision::TF32 && ci * H * W < limit && co * P < limit && co * ci * kk * kk < limit &&
      (fusion.in_scale == nullptr || ci <= tc::kMaxFusedChannels)) {
    conv2d_tf32(x, w, bias, padding, mode, out, accumulate, fusion);
    return;
  }
  const bool aliased = out.raw() == x.raw();
  Tensor tmp;
  if (aliased) {
    tmp = Tensor::empty(out.shape(), DType::F32, out.device());
    if (accumulate) tmp.copy_from(out);
  }
  Tensor& dst = aliased ? tmp : out;
  const dim3 grid(unsigned((P + BN - 1) / BN), unsigned((co + BM - 1) / BM));
  conv_kernel<<<grid, 256, 0, stream()>>>(x.data<float>(), w.data<float>(), bias ? bias->data<float>() : nullptr,
                                          dst.data<float>(), fusion.in_scale ? fusion.in_scale->data<float>() : nullptr,
                                          fusion.in_shift ? fusion.in_shift->data<float>() : nullptr, fusion.in_silu,
                                          ci, H, W, co, Ho, Wo, int(kk), padding, mode == PadMode::Reflect, accumulate);
  FALCON_CUDA_CHECK_LAUNCH("conv_kernel");
  if (aliased) out.copy_from(tmp);
  if (fusion.out_moments) channel_moments(out, *fusion.out_moments);
}

}  // namespace falcon::ops::cuda
