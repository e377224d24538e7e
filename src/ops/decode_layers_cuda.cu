// The decode step's transformer blocks (decode_layers.h) for one row as one persistent kernel.
//
// Why: at one row a layer's work is ~17 us of bytes on the H100, but as six kernels it took
// ~37 us, each kernel boundary (completion, release of the dependent, its post-wait round trips)
// adding 3.4-10 us whatever the kernels' prefetching (docs/cuda.md, Phases 3-7). Here one block
// per SM runs every layer; the phases meet at grid-wide barriers (one arrival and one poll of a
// counter in L2), and whatever a phase can fetch without the phase before (its weights, the next
// layer's keys and values) is in flight before the barrier in front of it. Measured, it is slower
// than the kernels one by one (1.39-1.42 against 1.09 ms a step on the H100: its barriers cost as
// much as kernel boundaries, and the products reach 1.5-1.9 TB/s with one round of prefetch;
// docs/cuda.md, Phase 8), so DecodeLayersTuning::persistent is off by default.
//
// Per layer, B = 1, shapes in elements:
//   P1 qkv [(H+2K) hd] = wqkv . rms_norm(x)          rows split over blocks, (row, 256-k step)
//                                                     pairs over the warps, sums in shared memory
//   P2 o [H hd] = attention                           block = (kv head, split of the keys):
//                                                     staged keys in shared memory, the newest key
//                                                     built here, the last split merges
//   P3 x += wo . o
//   P4 h [F] = gate(w13 . rms_norm(x))                row pairs (gate, up) per block
//   P5 x += w2 . h
// Data written by other blocks in this launch is read with ld.global.cg (L2): L1 is not coherent.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "ops/attention_split.cuh"
#include "ops/cuda_common.cuh"
#include "ops/decode_layers.h"
#include "ops/grow_buffer_cuda.cuh"
#include "ops/rope_angles.cuh"

namespace falcon::ops::cuda {

namespace {

using bf16 = __nv_bfloat16;

constexpr int kWarps = 16;
constexpr int kThreads = kWarps * 32;
constexpr int kMaxLayers = 48;  // the layer pointers travel in the kernel's parameters (4 KB)
constexpr int kPrefetch = 8;    // 16-byte weight loads per lane issued before a phase's barrier
constexpr int kStep = 256;      // k elements a warp covers per 16-byte load per lane

DecodeLayersTuning g_tuning;

struct LayerPtrs {
  const bf16* wqkv;
  const bf16* wo;
  const bf16* w13;
  const bf16* w2;
  const float* sinks;
  bf16* k;
  bf16* v;
};

struct Params {
  LayerPtrs layer[kMaxLayers];
  int n_layers;
  bf16* x;               // [D], in and out
  bf16* qkv;             // [(H + 2K) hd]
  bf16* o;               // [H hd]
  bf16* h;               // [F]
  float* part;           // [K][splits][G][hd + 4]: each split's (acc, m, l) of its heads
  unsigned* sync;        // [0] barrier arrivals, [1] exits, [2 + g] splits of kv head g done
  attn::PagedKeys keys;  // the row's block table and length
  const int32_t* pos_t;
  const float* pos_hw;
  const float* golden;
  int D, H, K, F;
  int splits, cap;   // key splits per kv head; keys staged per round
  int stage_at;      // the phase after whose barrier arrival the next layer's keys are staged
  int l2_ahead;      // weight phases prefetched towards L2 ahead of the current one (0: none)
  unsigned poll_ns;  // sleep between polls of the barrier counter
  int xs_floats;     // shared f32 input vector length (then the partial sums)
  int stage_bytes;   // shared key staging
  float eps, scale_log2;
  RopeInvFreq inv_freq;
  // DecodeLayersTuning::trace: per barrier k (0: the kernel's start) and block b, the global
  // time of the arrival at [(2k) nb + b] and of the leaving at [(2k + 1) nb + b].
  unsigned long long* trace;
};

// ---- grid-wide barrier ----------------------------------------------------------------------
// Barrier k (1-based) of a launch waits for k * gridDim.x arrivals. The counter only grows within
// a launch; the last block to leave the kernel sets it back to 0 (every block is past its last
// wait by then), so a launch starts at 0 without a memset node in the graph.

__device__ __forceinline__ unsigned ld_acquire(const unsigned* p) {
  unsigned v;
  asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
  return v;
}
__device__ __forceinline__ void red_release(unsigned* p, unsigned v) {
  asm volatile("red.release.gpu.global.add.u32 [%0], %1;" ::"l"(p), "r"(v) : "memory");
}

// Split in two so that a phase's prefetches (the next phase's weights, the next layer's keys)
// are issued between the arrival and the wait: the release in the arrival orders the block's
// earlier writes, and would also wait for loads issued before it.
__device__ __forceinline__ void grid_arrive(unsigned* count) {
  __syncthreads();  // the block's writes happen before thread 0's release
  if (threadIdx.x == 0) red_release(count, 1);
}
__device__ __forceinline__ void grid_wait(const unsigned* count, unsigned target,
                                          unsigned poll_ns) {
  if (threadIdx.x == 0) {
    // A block that can never arrive (not resident) would hang the GPU: give up after ~2 s.
    const long long t0 = clock64();
    while (ld_acquire(count) < target) {
      if (poll_ns) __nanosleep(poll_ns);  // fewer polls of the counter's L2 slice
      if (clock64() - t0 > (4ll << 30)) __trap();
    }
  }
  __syncthreads();
}


// ---- loads -------------------------------------------------------------------------------------


// ---- the products ------------------------------------------------------------------------------

// A block's share of a product y = W . v: rows [r0, r0 + rows) (whole `unit`s of rows, 2 for the
// gate's (gate, up) pairs, split evenly over the blocks); the block's (row, k-step) pairs split
// evenly over its warps, warp `w` taking pairs [f0, f1) in row-major order.
struct Slice {
  const bf16* w;
  int K, steps, r0, rows, f0, f1;
};

__device__ __forceinline__ Slice slice_of(const bf16* W, int N, int K, int unit, int warp) {
  Slice s;
  const int units = N / unit, nb = int(gridDim.x), b = int(blockIdx.x);
  const int u0 = int(int64_t(b) * units / nb), u1 = int(int64_t(b + 1) * units / nb);
  s.w = W;
  s.K = K;
  s.steps = K / kStep;
  s.r0 = u0 * unit;
  s.rows = (u1 - u0) * unit;
  const int total = s.rows * s.steps;
  s.f0 = warp * total / kWarps;
  s.f1 = (warp + 1) * total / kWarps;
  return s;
}

__device__ __forceinline__ const bf16* slice_addr(const Slice& s, int f, int lane) {
  const int r = f / s.steps, st = f - r * s.steps;
  return s.w + int64_t(s.r0 + r) * s.K + st * kStep + lane * 8;
}

// The warp's first kPrefetch weight loads, issued now (before a barrier), consumed after it.
__device__ __forceinline__ void prefetch_weights(const Slice& s, int lane, uint4 (&pf)[kPrefetch]) {
#pragma unroll
  for (int i = 0; i < kPrefetch; ++i) {
    // (assigned either way: the previous phase's values are dead, not carried across the phase)
    pf[i] = s.f0 + i < s.f1 ? ld_weights(slice_addr(s, s.f0 + i, lane)) : make_uint4(0, 0, 0, 0);
  }
}

// The block's whole slice of a product's weights towards L2 (bulk prefetches issued by one
// warp: nothing to wait for, no registers or shared memory held).
__device__ __forceinline__ void prefetch_slice_l2(const Slice& s, int lane) {
  const char* base = reinterpret_cast<const char*>(s.w + int64_t(s.r0) * s.K);
  const int64_t bytes = int64_t(s.rows) * s.K * int64_t(sizeof(bf16));
  constexpr int64_t kPiece = 16384;
  for (int64_t off = int64_t(lane) * kPiece; off < bytes; off += 32 * kPiece) {
    const unsigned n = unsigned(bytes - off < kPiece ? bytes - off : kPiece);
    asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(base + off), "r"(n) : "memory");
  }
}

// The warp's dot products over its (row, step) pairs against xs (shared, f32; NORM: each input
// scaled by inv and rounded to bf16, as the rms_norm op would store it); one partial sum per
// (row, warp) into part[row * kWarps + warp].
template <bool NORM>
__device__ __forceinline__ void gemv_slice(const Slice& s, const uint4 (&pf)[kPrefetch],
                                           const float* xs, float inv, float* part, int lane,
                                           int warp) {
  if (s.f0 >= s.f1) return;
  int cur = s.f0 / s.steps;
  float acc = 0.f;
  const auto consume = [&](int f, const uint4& wq) {
    const int r = f / s.steps, st = f - r * s.steps;
    if (r != cur) {  // warp-uniform
      const float v = warp_sum(acc);
      if (lane == 0) part[cur * kWarps + warp] = v;
      acc = 0.f;
      cur = r;
    }
    const int k = st * kStep + lane * 8;
    const float4 a = *reinterpret_cast<const float4*>(xs + k),
                 c = *reinterpret_cast<const float4*>(xs + k + 4);
    float xv[8] = {a.x, a.y, a.z, a.w, c.x, c.y, c.z, c.w};
    if constexpr (NORM) {
#pragma unroll
      for (int i = 0; i < 8; ++i) xv[i] = bf16_round(xv[i] * inv);
    }
    float wv[8];
    unpack16<bf16>(wq, wv);
#pragma unroll
    for (int i = 0; i < 8; ++i) acc = fmaf(wv[i], xv[i], acc);
  };
#pragma unroll
  for (int i = 0; i < kPrefetch; ++i) {
    if (s.f0 + i < s.f1) consume(s.f0 + i, pf[i]);
  }
  for (int f = s.f0 + kPrefetch; f < s.f1; f += 4) {
    uint4 wq[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      if (f + i < s.f1) wq[i] = ld_weights(slice_addr(s, f + i, lane));
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      if (f + i < s.f1) consume(f + i, wq[i]);
    }
  }
  const float v = warp_sum(acc);
  if (lane == 0) part[cur * kWarps + warp] = v;
}

// The block's rows' sums, warps added in order.
__device__ __forceinline__ float row_sum(const float* part, int t) {
  float v = 0.f;
#pragma unroll
  for (int w = 0; w < kWarps; ++w) v += part[t * kWarps + w];
  return v;
}

// n values of src (bf16, written in this launch) into xs as f32, the partial sums zeroed;
// SS: each warp's sum of squares into red[warp]. Ends with a block barrier.
template <bool SS>
__device__ __forceinline__ void stage_input(const bf16* src, int n, float* xs, float* part,
                                            int part_len, float* red) {
  const int tid = int(threadIdx.x);
  float ss = 0.f;
  for (int i = tid * 8; i < n; i += kThreads * 8) {
    const uint4 r = __ldcg(reinterpret_cast<const uint4*>(src + i));
    float f[8];
    unpack16<bf16>(r, f);
    *reinterpret_cast<float4*>(xs + i) = make_float4(f[0], f[1], f[2], f[3]);
    *reinterpret_cast<float4*>(xs + i + 4) = make_float4(f[4], f[5], f[6], f[7]);
    if constexpr (SS) {
#pragma unroll
      for (int e = 0; e < 8; ++e) ss = fmaf(f[e], f[e], ss);
    }
  }
  for (int i = tid; i < part_len; i += kThreads) part[i] = 0.f;
  if constexpr (SS) {
    ss = warp_sum(ss);
    if (tid % 32 == 0) red[tid / 32] = ss;
  }
  __syncthreads();
}

__device__ __forceinline__ float rms_inv(const float* red, int n, float eps) {
  float ss = 0.f;
#pragma unroll
  for (int w = 0; w < kWarps; ++w) ss += red[w];
  return 1.0f / sqrtf(ss / float(n) + eps);
}

// ---- the kernel
// ----------------------------------------------------------------------------------

template <int HD, int G>
__global__ void __launch_bounds__(kThreads, 1)
    decode_layers_kernel(const __grid_constant__ Params p) {
  constexpr int E = 8;               // bf16 per 16-byte chunk
  constexpr int LC = HD / 64;        // chunks per lane of a head row (8 lanes per row)
  constexpr int DL = LC * E;         // dims per lane
  constexpr int Q4 = HD / 4;         // rotation pairs per half
  constexpr int RC = HD / E;         // chunks per head row
  constexpr int CPK = (G + 1) * RC;  // chunks per staged key: G key rows, one value row
  constexpr int PW = HD + 4;         // a head's partial: acc [HD], m, l, 2 pad (16-byte rows)
  extern __shared__ __align__(16) unsigned char smem[];
  uint4* stage = reinterpret_cast<uint4*>(smem);               // [cap][CPK]
  float* xs = reinterpret_cast<float*>(smem + p.stage_bytes);  // [xs_floats]
  float* part = xs + p.xs_floats;                              // [rows][kWarps]
  float* merge = xs;                                           // attention: aliases xs, part
  __shared__ float red[kWarps];
  __shared__ float2 rope[Q4 * (1 + G)];
  __shared__ bool last_split;
  __shared__ uint4 newest_kv[CPK];

  const int tid = int(threadIdx.x), lane = tid & 31, warp = tid >> 5, gl = lane & 7,
            grp = lane >> 3;
  const int nb = int(gridDim.x), b = int(blockIdx.x);
  const int D = p.D, H = p.H, K = p.K, F = p.F, NQKV = (H + 2 * K) * HD;
  unsigned barriers = 0;
  const auto arrive = [&] {
    ++barriers;
    if (p.trace && tid == 0) p.trace[(2 * barriers) * nb + b] = global_ns();
    grid_arrive(p.sync);
  };
  const auto wait = [&] {
    grid_wait(p.sync, barriers * unsigned(nb), p.poll_ns);
    if (p.trace && tid == 0) p.trace[(2 * barriers + 1) * nb + b] = global_ns();
  };
  if (p.trace && tid == 0) p.trace[nb + b] = global_ns();

  // This block's attention work: kv head g, split sp of its keys [c0, c1) (none past K * splits).
  const bool attends = b < K * p.splits;
  const int g = attends ? b / p.splits : 0, sp = attends ? b % p.splits : 0;
  const attn::PagedKeys& keys = p.keys;
  const int n =
      attends ? int(keys.last_key(0) + 1) : 0;  // keys after the step, the newest included
  const int chunk = (n + p.splits - 1) / p.splits;
  const int c0 = std::min(sp * chunk, n), c1 = std::min(c0 + chunk, n);
  const int rounds = (c1 - c0 + p.cap - 1) / p.cap;
  const int newest = n - 1;
  const bool has_newest = attends && newest >= c0 && newest < c1;

  // Round r of layer l's keys and values into shared memory (cp.async, one group), all but the
  // newest key (built by P2 itself). A missing block zero-fills its keys (masked in P2).
  const auto stage_round = [&](int l, int r) {
    const int j0 = c0 + r * p.cap, j1 = std::min(c1, j0 + p.cap);
    const bf16* kc = p.layer[l].k;
    const bf16* vc = p.layer[l].v;
    for (int idx = tid; idx < (j1 - j0) * CPK; idx += kThreads) {
      const int jl = idx / CPK, c = idx - jl * CPK, j = j0 + jl;
      if (j == newest) continue;
      const int64_t row = keys.key_row(0, j);
      const int64_t rr = row < 0 ? 0 : row;
      const bf16* src = c < G * RC ? kc + (rr * H + g * G) * HD + c * E
                                   : vc + (rr * K + g) * HD + (c - G * RC) * E;
      attn::decode_cp_async16(stage + idx, src, row < 0 ? 0 : 16);
    }
    attn::decode_cp_async_commit();
  };

  // The rotation's cos/sin for this block's heads (host inputs only): [Q4] temporal, then [G][Q4]
  // spatial.
  const float ph = p.pos_hw[0], pw = p.pos_hw[1];
  const bool spatial = ph != 0.f || pw != 0.f;
  {
    const float pt = float(p.pos_t[0]);
    for (int i = tid; i < Q4 * (1 + G); i += kThreads) {
      const float angle =
          i < Q4
              ? rope_temporal_angle(pt, p.inv_freq.f[i])
              : rope_spatial_angle(ph, pw, p.golden + 2 * ((g * G + (i - Q4) / Q4) * Q4 + i % Q4));
      rope_cos_sin<bf16>(angle, &rope[i].x, &rope[i].y);
    }
  }
  // q and the newest key normalised, rotated with head g * G + hh's angles, rounded to bf16.
  const auto norm_rotate = [&](float(&v)[DL], int hh, unsigned mask) {
    attn::lane_group_norm_rotate<bf16, HD>(v, gl, rope, hh, spatial, p.eps, mask);
  };

  // Weight phase i of the launch (layer i / 4: qkv, wo, w13, w2) as this block's and warp's slice.
  const auto weight_slice = [&](int i) {
    const LayerPtrs& W = p.layer[i / 4];
    switch (i % 4) {
      case 0:
        return slice_of(W.wqkv, NQKV, D, 1, warp);
      case 1:
        return slice_of(W.wo, D, H * HD, 1, warp);
      case 2:
        return slice_of(W.w13, 2 * F, D, 2, warp);
      default:
        return slice_of(W.w2, D, F, 1, warp);
    }
  };
  // Weight phases up to `current + l2_ahead` are prefetched towards L2 (once each), so DRAM keeps
  // streaming through the barriers and the attention.
  int l2_issued = 0;
  const auto l2_prefetch_to = [&](int current) {
    const int target = std::min(current + p.l2_ahead, 4 * p.n_layers - 1);
    for (; l2_issued <= target; ++l2_issued) {
      if (warp == 0) prefetch_slice_l2(weight_slice(l2_issued), lane);
    }
  };
  if (attends && rounds > 0) stage_round(0, 0);
  uint4 pf[kPrefetch];
  prefetch_weights(slice_of(p.layer[0].wqkv, NQKV, D, 1, warp), lane, pf);
  __syncthreads();  // rope

  for (int l = 0; l < p.n_layers; ++l) {
    const LayerPtrs& L = p.layer[l];
    // ---- P1: qkv = wqkv . rms_norm(x) ----
    if (p.l2_ahead > 0) l2_prefetch_to(4 * l);
    {
      const Slice s = slice_of(L.wqkv, NQKV, D, 1, warp);
      stage_input<true>(p.x, D, xs, part, s.rows * kWarps, red);
      gemv_slice<true>(s, pf, xs, rms_inv(red, D, p.eps), part, lane, warp);
      __syncthreads();
      for (int t = tid; t < s.rows; t += kThreads)
        p.qkv[s.r0 + t] = __float2bfloat16_rn(row_sum(part, t));
    }
    arrive();
    wait();

    // ---- P2: attention of kv head g's query heads over this split's keys ----
    if (p.l2_ahead > 0) l2_prefetch_to(4 * l + 1);
    if (attends) {
      // The newest key, normalised and rotated for each query head, and its value: into the pool
      // and newest_kv (put into its staged slot with the round holding it). Lane group 0 of warp 0.
      if (has_newest) {
        if (warp == 0 && lane < 8) {
          const int64_t row = keys.key_row(0, newest);
          const bf16* kin = p.qkv + (H + g) * HD;
          const bf16* vin = kin + K * HD;
#pragma unroll
          for (int hh = 0; hh < G; ++hh) {
            float v[DL];
#pragma unroll
            for (int i = 0; i < LC; ++i) {
              float f[E];
              unpack16<bf16>(__ldcg(reinterpret_cast<const uint4*>(kin + (gl + 8 * i) * E)),
                                   f);
#pragma unroll
              for (int e = 0; e < E; ++e) v[i * E + e] = f[e];
            }
            norm_rotate(v, hh, 0xffu);
#pragma unroll
            for (int i = 0; i < LC; ++i) {
              float f[E];
#pragma unroll
              for (int e = 0; e < E; ++e) f[e] = v[i * E + e];
              const uint4 packed = pack16<bf16>(f);
              newest_kv[hh * RC + gl + 8 * i] = packed;
              if (row >= 0)
                *reinterpret_cast<uint4*>(L.k + (row * H + g * G + hh) * HD + (gl + 8 * i) * E) =
                    packed;
            }
          }
#pragma unroll
          for (int i = 0; i < LC; ++i) {
            const uint4 raw = __ldcg(reinterpret_cast<const uint4*>(vin + (gl + 8 * i) * E));
            newest_kv[G * RC + gl + 8 * i] = raw;
            if (row >= 0)
              *reinterpret_cast<uint4*>(L.v + (row * K + g) * HD + (gl + 8 * i) * E) = raw;
          }
        }
        __syncthreads();
      }
      // q heads g * G + hh: normalised, rotated, rounded, scaled to log2 units (each lane group
      // holds them whole: 8 lanes x DL dims)
      float qv[G][DL];
#pragma unroll
      for (int hh = 0; hh < G; ++hh) {
        const bf16* qp = p.qkv + (g * G + hh) * HD;
#pragma unroll
        for (int i = 0; i < LC; ++i) {
          float f[E];
          unpack16<bf16>(__ldcg(reinterpret_cast<const uint4*>(qp + (gl + 8 * i) * E)), f);
#pragma unroll
          for (int e = 0; e < E; ++e) qv[hh][i * E + e] = f[e];
        }
        norm_rotate(qv[hh], hh, 0xffffffffu);
#pragma unroll
        for (int d = 0; d < DL; ++d) qv[hh][d] *= p.scale_log2;
      }
      float m[G], lsum[G], acc[G][DL];
#pragma unroll
      for (int hh = 0; hh < G; ++hh) {
        m[hh] = -INFINITY;
        lsum[hh] = 0.f;
#pragma unroll
        for (int d = 0; d < DL; ++d) acc[hh][d] = 0.f;
      }
      if (p.stage_at == 1 && l > 0 && rounds > 0) stage_round(l, 0);  // staged only now: no overlap
      for (int r = 0; r < rounds; ++r) {
        const int j0 = c0 + r * p.cap, cnt = std::min(c1, j0 + p.cap) - j0;
        if (r > 0) {
          __syncthreads();  // round r - 1 is read
          stage_round(l, r);
        }
        attn::decode_cp_async_wait(0);
        if (has_newest && newest < j0 + cnt && tid < CPK)
          stage[(newest - j0) * CPK + tid] = newest_kv[tid];
        __syncthreads();  // every thread's copies (and the newest key) are in
        // A lane group per key: 4 keys per warp, 64 per block, per iteration (whole warps iterate).
        for (int base = warp * 4; base < cnt; base += kWarps * 4) {
          const int kl = base + grp;
          const bool valid = kl < cnt;
          const bool present = valid && keys.key_row(0, j0 + kl) >= 0;
          const uint4* src = stage + (valid ? kl : 0) * CPK;
          float sc[G], vf[DL];
#pragma unroll
          for (int hh = 0; hh < G; ++hh) {
            float d0 = 0.f, d1 = 0.f;
#pragma unroll
            for (int i = 0; i < LC; ++i) {
              float f[E];
              unpack16<bf16>(src[hh * RC + gl + 8 * i], f);
#pragma unroll
              for (int e = 0; e < E; e += 2) {
                d0 = fmaf(qv[hh][i * E + e], f[e], d0);
                d1 = fmaf(qv[hh][i * E + e + 1], f[e + 1], d1);
              }
            }
            sc[hh] = d0 + d1;
          }
#pragma unroll
          for (int i = 0; i < LC; ++i) {
            float f[E];
            unpack16<bf16>(src[G * RC + gl + 8 * i], f);
#pragma unroll
            for (int e = 0; e < E; ++e) vf[i * E + e] = f[e];
          }
#pragma unroll
          for (int hh = 0; hh < G; ++hh) {
            sc[hh] += __shfl_xor_sync(0xffffffffu, sc[hh], 1);
            sc[hh] += __shfl_xor_sync(0xffffffffu, sc[hh], 2);
            sc[hh] += __shfl_xor_sync(0xffffffffu, sc[hh], 4);
            if (!present) continue;
            if (sc[hh] > m[hh]) {
              const float alpha = exp2f(m[hh] - sc[hh]);  // 0 while m is -inf
              lsum[hh] *= alpha;
#pragma unroll
              for (int d = 0; d < DL; ++d) acc[hh][d] *= alpha;
              m[hh] = sc[hh];
            }
            const float pr = exp2f(sc[hh] - m[hh]);
            lsum[hh] += pr;
#pragma unroll
            for (int d = 0; d < DL; ++d) acc[hh][d] = fmaf(pr, vf[d], acc[hh][d]);
          }
        }
      }
      // The 4 lane groups of each warp, then the warps in shared memory.
      attn::merge_lane_groups<G, DL>(m, lsum, acc);
      float* sm_ml = merge;                    // [kWarps][G][2]
      float* sm_acc = merge + kWarps * G * 2;  // [kWarps][G][HD]
      if (lane < 8) {
#pragma unroll
        for (int hh = 0; hh < G; ++hh) {
          if (lane == 0) {
            sm_ml[(warp * G + hh) * 2] = m[hh];
            sm_ml[(warp * G + hh) * 2 + 1] = lsum[hh];
          }
#pragma unroll
          for (int i = 0; i < LC; ++i) {
#pragma unroll
            for (int e = 0; e < E; ++e)
              sm_acc[(warp * G + hh) * HD + (gl + 8 * i) * E + e] = acc[hh][i * E + e];
          }
        }
      }
      __syncthreads();
      float* my_part = p.part + int64_t(g * p.splits + sp) * G * PW;
      for (int idx = tid; idx < G * HD; idx += kThreads) {
        const int hh = idx / HD, d = idx % HD;
        float M = -INFINITY;
#pragma unroll
        for (int w = 0; w < kWarps; ++w) M = fmaxf(M, sm_ml[(w * G + hh) * 2]);
        float Ls = 0.f, A = 0.f;
        if (M != -INFINITY) {
#pragma unroll
          for (int w = 0; w < kWarps; ++w) {
            const float f = exp2f(sm_ml[(w * G + hh) * 2] - M);
            Ls += f * sm_ml[(w * G + hh) * 2 + 1];
            A += f * sm_acc[(w * G + hh) * HD + d];
          }
        }
        my_part[hh * PW + d] = A;
        if (d == 0) {
          my_part[hh * PW + HD] = M;
          my_part[hh * PW + HD + 1] = Ls;
        }
      }
      // The last split of kv head g to finish merges the splits into o (thread 0's fences order
      // the block's partials, written before the block barrier, as a grid barrier does).
      __syncthreads();
      if (tid == 0) {
        __threadfence();
        const unsigned done = atomicAdd(p.sync + 2 + g, 1u);
        last_split = done == unsigned(p.splits - 1);
        if (last_split) p.sync[2 + g] = 0;  // read again only after two grid barriers
        __threadfence();
      }
      __syncthreads();
      if (last_split) {
        // All the splits' partials into shared memory at once (one L2 round trip), then merged.
        const float4* parts =
            reinterpret_cast<const float4*>(p.part + int64_t(g * p.splits) * G * PW);
        float* sp_all = merge;  // [splits][G][PW]
        for (int i = tid; i < p.splits * G * PW / 4; i += kThreads)
          reinterpret_cast<float4*>(sp_all)[i] = __ldcg(parts + i);
        __syncthreads();
        for (int idx = tid; idx < G * HD; idx += kThreads) {
          const int hh = idx / HD, d = idx % HD;
          float M = -INFINITY;
          for (int s2 = 0; s2 < p.splits; ++s2) M = fmaxf(M, sp_all[(s2 * G + hh) * PW + HD]);
          float Ls = 0.f, A = 0.f;
          if (M != -INFINITY) {
            for (int s2 = 0; s2 < p.splits; ++s2) {
              const float* ps = sp_all + (s2 * G + hh) * PW;
              if (ps[HD] == -INFINITY) continue;
              const float f = exp2f(ps[HD] - M);
              Ls += f * ps[HD + 1];
              A += f * ps[d];
            }
          }
          p.o[(g * G + hh) * HD + d] =
              __float2bfloat16_rn(A * attn::gate_factor(M, Ls, L.sinks[g * G + hh]));
        }
      }
    }
    arrive();
    Slice s = slice_of(L.wo, D, H * HD, 1, warp);
    prefetch_weights(s, lane, pf);
    // The next layer's keys may land in the staging buffer now (this layer's reads are done).
    if (p.stage_at == 2 && l + 1 < p.n_layers && rounds > 0) stage_round(l + 1, 0);
    wait();

    // ---- P3: x += wo . o ----
    stage_input<false>(p.o, H * HD, xs, part, s.rows * kWarps, red);
    gemv_slice<false>(s, pf, xs, 1.f, part, lane, warp);
    __syncthreads();
    for (int t = tid; t < s.rows; t += kThreads) {
      const int r = s.r0 + t;
      p.x[r] = __float2bfloat16_rn(__bfloat162float(__ldcg(p.x + r)) + row_sum(part, t));
    }
    arrive();
    s = slice_of(L.w13, 2 * F, D, 2, warp);
    prefetch_weights(s, lane, pf);
    if (p.stage_at == 3 && l + 1 < p.n_layers && rounds > 0) stage_round(l + 1, 0);
    wait();

    // ---- P4: h = relu(gate)^2 * up, (gate, up) = w13 . rms_norm(x) ----
    if (p.l2_ahead > 0) l2_prefetch_to(4 * l + 2);
    stage_input<true>(p.x, D, xs, part, s.rows * kWarps, red);
    gemv_slice<true>(s, pf, xs, rms_inv(red, D, p.eps), part, lane, warp);
    __syncthreads();
    for (int t = tid; t < s.rows / 2; t += kThreads) {
      const float gate = fmaxf(bf16_round(row_sum(part, 2 * t)), 0.f),
                  up = bf16_round(row_sum(part, 2 * t + 1));
      p.h[s.r0 / 2 + t] = __float2bfloat16_rn(gate * gate * up);
    }
    arrive();
    s = slice_of(L.w2, D, F, 1, warp);
    prefetch_weights(s, lane, pf);
    if (p.stage_at == 4 && l + 1 < p.n_layers && rounds > 0) stage_round(l + 1, 0);
    wait();

    // ---- P5: x += w2 . h ----
    if (p.l2_ahead > 0) l2_prefetch_to(4 * l + 3);
    stage_input<false>(p.h, F, xs, part, s.rows * kWarps, red);
    gemv_slice<false>(s, pf, xs, 1.f, part, lane, warp);
    __syncthreads();
    for (int t = tid; t < s.rows; t += kThreads) {
      const int r = s.r0 + t;
      p.x[r] = __float2bfloat16_rn(__bfloat162float(__ldcg(p.x + r)) + row_sum(part, t));
    }
    if (l + 1 < p.n_layers) {
      arrive();
      prefetch_weights(slice_of(p.layer[l + 1].wqkv, NQKV, D, 1, warp), lane, pf);
      if (p.stage_at == 5 && rounds > 0) stage_round(l + 1, 0);
      wait();
    }
  }
  if (p.trace && tid == 0) p.trace[(2 * (barriers + 1)) * nb + b] = global_ns();

  // Leave: the last block out resets the counters for the next launch.
  __syncthreads();
  if (tid == 0) {
    const unsigned out = atomicAdd(p.sync + 1, 1u);
    if (out == unsigned(nb - 1)) {
      p.sync[0] = 0;
      p.sync[1] = 0;
    }
  }
}

// The most rows of any product a block owns (the partial sums' shared memory).
int max_block_rows(int nb, int NQKV, int D, int F) {
  const int qkv = (NQKV + nb - 1) / nb, out = (D + nb - 1) / nb, gate = 2 * ((F + nb - 1) / nb);
  return std::max({qkv, out, gate});
}

template <int HD, int G>
bool launch(Params& p, int nb) {
  const auto kernel = decode_layers_kernel<HD, G>;
  int optin = 0, dev = 0;
  FALCON_CUDA_CHECK(cudaGetDevice(&dev));
  FALCON_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
  cudaFuncAttributes attr{};
  FALCON_CUDA_CHECK(cudaFuncGetAttributes(&attr, kernel));
  const int NQKV = (p.H + 2 * p.K) * HD;
  p.xs_floats = (std::max({p.D, p.H * HD, p.F}) + 3) / 4 * 4;
  const int part_floats = max_block_rows(nb, NQKV, p.D, p.F) * kWarps;
  const int merge_floats = std::max(kWarps, p.splits) * G * (HD + 4);
  const int other = std::max(p.xs_floats + part_floats, merge_floats) * int(sizeof(float));
  const int key_bytes = (G + 1) * HD * int(sizeof(bf16));
  const int room = optin - int(attr.sharedSizeBytes) - other - 1024;  // 1 KB: the runtime's reserve
  int cap = room / key_bytes;
  if (cap < 16) return false;  // rounds of fewer keys would be slower than the separate kernels
  const int chunk = int((int64_t(p.keys.max_blocks) * p.keys.block_size + p.splits - 1) / p.splits);
  cap = std::min(cap, std::max(chunk, 1));
  if (g_tuning.max_staged_keys > 0) cap = std::min(cap, g_tuning.max_staged_keys);
  p.cap = cap;
  p.stage_bytes = cap * key_bytes;
  const size_t smem = size_t(p.stage_bytes) + size_t(other);
  FALCON_CUDA_CHECK(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  int per_sm = 0;
  FALCON_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kThreads, smem));
  if (per_sm < 1) return false;  // every block must be resident at once (grid barriers)
  kernel<<<nb, kThreads, smem, stream()>>>(p);
  FALCON_CUDA_CHECK_LAUNCH("decode_layers_kernel");
  return true;
}

}  // namespace

void set_decode_layers_tuning(const DecodeLayersTuning& t) {
  g_tuning = t;
}
DecodeLayersTuning decode_layers_tuning() {
  return g_tuning;
}

bool decode_layers(Tensor& x, const std::vector<DecodeLayer>& layers, const Tensor& pos_t,
                   const Tensor& pos_hw, const Tensor& golden, float theta, float eps,
                   const Tensor& block_table, const Tensor& seq_lens) {
  if (!g_tuning.persistent || x.dtype() != DType::BF16 || x.dim(0) != 1) return false;
  if (layers.empty() || layers.size() > size_t(kMaxLayers)) return false;
  const DecodeLayer& l0 = layers.front();
  const int64_t D = x.dim(1), H = l0.k_cache->dim(2), hd = l0.k_cache->dim(3),
                K = l0.v_cache->dim(2);
  const int64_t F = l0.w2->dim(1), G = H / K;
  if ((hd != 64 && hd != 128) || (G != 1 && G != 2) || D % kStep != 0 || F % kStep != 0 ||
      (H * hd) % kStep != 0) {
    return false;
  }
  const int64_t bs = l0.k_cache->dim(1), num_blocks = l0.k_cache->dim(0),
                max_blocks = block_table.dim(1);
  if (max_blocks * bs > int64_t(INT32_MAX) || num_blocks * bs * H * hd > int64_t(INT32_MAX) * 8)
    return false;
  Params p{};
  for (size_t i = 0; i < layers.size(); ++i) {
    const DecodeLayer& l = layers[i];
    for (const Tensor* w : {l.wqkv, l.wo, l.w13, l.w2}) {
      if (w->dtype() != DType::BF16 || !aligned_to(w->raw(), 16)) return false;
    }
    if (l.k_cache->dim(0) != num_blocks || l.k_cache->dim(1) != bs ||
        !aligned_to(l.k_cache->raw(), 16) || !aligned_to(l.v_cache->raw(), 16) ||
        l.k_cache->dim(2) != H || l.k_cache->dim(3) != hd) {
      return false;
    }
    p.layer[i] = {l.wqkv->data<bf16>(),   l.wo->data<bf16>(),     l.w13->data<bf16>(),
                  l.w2->data<bf16>(),     l.sinks->data<float>(), l.k_cache->data<bf16>(),
                  l.v_cache->data<bf16>()};
  }
  if (!aligned_to(x.raw(), 16)) return false;
  const int nb = sm_count();
  const int splits = g_tuning.splits > 0 ? g_tuning.splits : nb / int(K);
  if (splits < 1 || int64_t(splits) * K > nb) return false;

  // Scratch: qkv, o, h (bf16), the attention partials (f32); the counters (zeroed once).
  const size_t NQKV = size_t((H + 2 * K) * hd);
  const auto up16 = [](size_t v) { return (v + 15) / 16 * 16; };
  const size_t qkv_b = up16(NQKV * 2), o_b = up16(size_t(H * hd) * 2), h_b = up16(size_t(F) * 2);
  const size_t part_b = up16(size_t(K) * size_t(splits) * size_t(G) * size_t(hd + 4) * 4);
  auto* scratch = static_cast<unsigned char*>(
      grow_buffer(GrowBuffer::DecodeLayers, qkv_b + o_b + h_b + part_b));
  auto* counters =
      static_cast<unsigned*>(grow_buffer(GrowBuffer::DecodeLayersSync, size_t(2 + K) * 4, true));

  p.n_layers = int(layers.size());
  p.x = x.data<bf16>();
  p.qkv = reinterpret_cast<bf16*>(scratch);
  p.o = reinterpret_cast<bf16*>(scratch + qkv_b);
  p.h = reinterpret_cast<bf16*>(scratch + qkv_b + o_b);
  p.part = reinterpret_cast<float*>(scratch + qkv_b + o_b + h_b);
  p.sync = counters;
  p.keys = attn::paged_keys(block_table.data<int32_t>(), seq_lens.data<int32_t>(), max_blocks, bs,
                            num_blocks);
  p.pos_t = pos_t.data<int32_t>();
  p.pos_hw = pos_hw.data<float>();
  p.golden = golden.data<float>();
  p.D = int(D);
  p.H = int(H);
  p.K = int(K);
  p.F = int(F);
  p.splits = splits;
  p.eps = eps;
  p.scale_log2 = float(1.4426950408889634 / std::sqrt(double(hd)));
  p.inv_freq = rope_inv_freqs(theta, int(hd));
  p.stage_at = g_tuning.stage_at;
  p.l2_ahead = g_tuning.l2_ahead;
  p.poll_ns = unsigned(std::max(0, g_tuning.poll_ns));
  p.trace = g_tuning.trace;
  if (hd == 128) return G == 2 ? launch<128, 2>(p, nb) : launch<128, 1>(p, nb);
  return G == 2 ? launch<64, 2>(p, nb) : launch<64, 1>(p, nb);
}

}  // namespace falcon::ops::cuda
