// The decode step's feed-forward half as one kernel (feed_forward.h): BF16, one row.
//
// Block b owns the hidden units f0 .. f0 + C (f0 = b C). Before the wait for the kernel before
// (the output product, which writes x), it starts its 2C rows of w13 (contiguous: rows are
// interleaved gate/up) towards shared memory as one bulk copy per row on an mbarrier, and loads
// its D x C slice of w2 into registers; neither depends on x. After the wait each warp takes the
// row's RMS itself (x is 2 KB, no block barrier), the warps compute the C (gate, up) pairs from
// shared memory, and each thread its rows' partial sums of the down product. Those meet in a
// two-level tree: the last block of each group of blocks to finish adds its group's partials in
// block order, and the last of those adds the groups' sums in group order to x; the counters go
// back to zero in the same launch, so a captured graph needs no memset node. Which block
// finishes last changes nothing in the sums (deterministic).
#include <algorithm>
#include <cmath>
#include <mutex>

#include "ops/bulk_copy_cuda.cuh"
#include "ops/cuda_common.cuh"
#include "ops/feed_forward.h"
#include "ops/grow_buffer_cuda.cuh"

namespace falcon::ops::cuda {

namespace {

using bf16 = __nv_bfloat16;

constexpr int kThreads = 256;  // 8 warps; thread t owns x's rows t, t + 256, ...
constexpr int kMaxChunk = 32;  // hidden units per block: w2's slice is 4 x 16 bytes a row
constexpr int kTraceMarks = 8;

FeedForwardTuning g_tuning;
std::mutex g_tuning_mu;

// v[0] + v[stride] + ... + v[(n - 1) stride] in that order, from L2 (written by other blocks in
// this launch). The loads of a round of 16 are all issued before the first add: summed as they
// arrive, each would wait for the one before (n round trips instead of n / 16).
__device__ __forceinline__ float ordered_sum(const float* v, int stride, int n) {
  constexpr int kRound = 16;
  float sum = 0.f;
  for (int b0 = 0; b0 < n; b0 += kRound) {
    float r[kRound];
#pragma unroll
    for (int b = 0; b < kRound; ++b) r[b] = b0 + b < n ? __ldcg(v + int64_t(b0 + b) * stride) : 0.f;
#pragma unroll
    for (int b = 0; b < kRound; ++b) {
      if (b0 + b < n) sum += r[b];
    }
  }
  return sum;
}

// Counts the block in on `counter` once every thread's writes are visible; true in the block
// that arrives as the last of `arrivals`, which also sets the counter back to zero (everyone has
// counted in), so the next launch starts from zero. `last` is the block's shared flag.
__device__ __forceinline__ bool count_in_last(unsigned* counter, int arrivals, unsigned& last) {
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) {
    last = atomicAdd(counter, 1u) == unsigned(arrivals - 1);
    if (last) *counter = 0;
  }
  __syncthreads();
  if (last) __threadfence();  // then read what the others wrote
  return last;
}

struct Params {
  bf16* x;          // [D], read, then x += the down product
  const bf16* w13;  // [2F, D]
  const bf16* w2;   // [D, F]
  float* partials;  // [blocks, D]: each block's partial sums
  float* groups;    // [groups, D]: each group's sums
  unsigned* count;  // [groups + 1]: blocks of a group done, then groups done; zero between launches
  int F;
  int group;  // blocks per group (the last group may have fewer)
  float eps;
  unsigned long long* trace;  // FeedForwardTuning::trace
  bool early_trigger;
};

__device__ __forceinline__ void mark(const Params& p, int k) {
  if (p.trace && threadIdx.x == 0) {
    p.trace[blockIdx.x * kTraceMarks + k] = global_ns();
  }
}

// R = D / 256 (x's elements per lane, in steps of 8), CV = C / 8 (w2's 16-byte loads per row).
template <int R, int CV>
__global__ void __launch_bounds__(kThreads) feed_forward_kernel(Params p) {
  constexpr int C = 8 * CV, D = 256 * R;
  extern __shared__ __align__(128) unsigned char smem[];
  bf16* w13s = reinterpret_cast<bf16*>(smem);  // [2C, D]
  __shared__ __align__(8) uint64_t bar;
  __shared__ float gate[C];
  __shared__ unsigned last;
  const int t = threadIdx.x, lane = t % 32, warp = t / 32;
  const int64_t f0 = int64_t(blockIdx.x) * C;
  if (p.early_trigger)
    pdl_allow_dependents();  // the next kernel may load its weights during this one
  mark(p, 0);

  if (t == 0) mbarrier_init(&bar, 1);
  __syncthreads();
  if (warp == 0) {
    constexpr unsigned row_bytes = D * sizeof(bf16);
    if (lane == 0) mbarrier_arrive_expect_bytes(&bar, 2 * C * row_bytes);
    __syncwarp();
    for (int r = lane; r < 2 * C; r += 32) {
      bulk_copy_to_shared(w13s + r * D, p.w13 + (2 * f0 + r) * D, row_bytes, &bar);
    }
  }
  uint4 w2r[R][CV];  // w2[t + 256 i, f0 .. f0 + C)
#pragma unroll
  for (int i = 0; i < R; ++i) {
#pragma unroll
    for (int c = 0; c < CV; ++c)
      w2r[i][c] = ld_weights(p.w2 + int64_t(t + 256 * i) * p.F + f0 + 8 * c);
  }

  pdl_wait();  // x is the output product's
  if (!p.early_trigger) pdl_allow_dependents();
  mark(p, 1);

  // n = rms_norm(x), the lane's elements lane * 8 + 256 s .. + 8, rounded to bf16 as the op stores
  // it.
  float n[R][8];
  float ss = 0.f;
#pragma unroll
  for (int s = 0; s < R; ++s) {
    load_f32<bf16, 8>(p.x + lane * 8 + 256 * s, n[s]);
#pragma unroll
    for (int e = 0; e < 8; ++e) ss += n[s][e] * n[s][e];
  }
  const float inv = 1.0f / sqrtf(warp_sum(ss) / float(D) + p.eps);
#pragma unroll
  for (int s = 0; s < R; ++s) {
#pragma unroll
    for (int e = 0; e < 8; ++e) n[s][e] = bf16_round(n[s][e] * inv);
  }

  // Warp w: the pairs j = w + 8 q (rows 2j: gate, 2j + 1: up) from shared memory.
  mbarrier_wait(&bar, 0);
  mark(p, 2);
#pragma unroll
  for (int q = 0; q < CV; ++q) {
    const int j = warp + 8 * q;
    float dg = 0.f, du = 0.f;
#pragma unroll
    for (int s = 0; s < R; ++s) {
      float wg[8], wu[8];
      unpack16<bf16>(*reinterpret_cast<const uint4*>(w13s + (2 * j) * D + lane * 8 + 256 * s), wg);
      unpack16<bf16>(*reinterpret_cast<const uint4*>(w13s + (2 * j + 1) * D + lane * 8 + 256 * s), wu);
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        dg = fmaf(wg[e], n[s][e], dg);
        du = fmaf(wu[e], n[s][e], du);
      }
    }
    dg = warp_sum(dg);
    du = warp_sum(du);
    if (lane == 0) {
      const float g = fmaxf(bf16_round(dg), 0.f);
      gate[j] = bf16_round(g * g * bf16_round(du));
    }
  }
  __syncthreads();

  // This block's partial sums of the down product for x's rows t + 256 i.
  float* mine = p.partials + int64_t(blockIdx.x) * D;
#pragma unroll
  for (int i = 0; i < R; ++i) {
    float acc = 0.f;
#pragma unroll
    for (int c = 0; c < CV; ++c) {
      float w[8];
      unpack16<bf16>(w2r[i][c], w);
#pragma unroll
      for (int e = 0; e < 8; ++e) acc = fmaf(w[e], gate[8 * c + e], acc);
    }
    mine[t + 256 * i] = acc;
  }

  // The tree. Every thread's stores are made visible before thread 0 counts the block in.
  const int groups = (int(gridDim.x) + p.group - 1) / p.group;
  const int grp = int(blockIdx.x) / p.group;
  const int first = grp * p.group, members = min(p.group, int(gridDim.x) - first);
  const bool group_last = count_in_last(&p.count[grp], members, last);
  mark(p, 3);
  if (!group_last) return;
#pragma unroll
  for (int i = 0; i < R; ++i) {
    p.groups[grp * D + t + 256 * i] =
        ordered_sum(p.partials + int64_t(first) * D + t + 256 * i, D, members);
  }
  const bool all_last = count_in_last(&p.count[groups], groups, last);
  mark(p, 4);
  if (!all_last) return;
#pragma unroll
  for (int i = 0; i < R; ++i) {
    const float sum = ordered_sum(p.groups + t + 256 * i, D, groups);
    bf16* xo = p.x + t + 256 * i;
    *xo = __float2bfloat16_rn(__bfloat162float(*xo) + sum);
  }
  mark(p, 5);
}

template <int R, int CV>
void launch_kernel(dim3 grid, size_t smem, const Params& p) {
  // Every instantiation may take up to its chunk's shared memory (set once per kernel).
  static const bool attr = [] {
    FALCON_CUDA_CHECK(cudaFuncSetAttribute(feed_forward_kernel<R, CV>,
                                           cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           int(2 * 8 * CV * 256 * R * sizeof(bf16))));
    return true;
  }();
  (void)attr;
  launch_dependent(feed_forward_kernel<R, CV>, grid, dim3(kThreads), smem, p);
  FALCON_CUDA_CHECK_LAUNCH("feed_forward_kernel");
}

template <int R>
void launch_chunk(int cv, dim3 grid, size_t smem, const Params& p) {
  switch (cv) {
    case 1:
      launch_kernel<R, 1>(grid, smem, p);
      break;
    case 2:
      launch_kernel<R, 2>(grid, smem, p);
      break;
    case 3:
      launch_kernel<R, 3>(grid, smem, p);
      break;
    default:
      launch_kernel<R, 4>(grid, smem, p);
      break;
  }
}

// Hidden units per block: the tuning's, else the smallest multiple of 8 (up to 32) dividing F
// that needs no more blocks than there are multiprocessors, else 32 (several waves). 0: none fits.
int chunk_for(int64_t F, int chunk) {
  if (chunk > 0) return chunk % 8 == 0 && chunk <= kMaxChunk && F % chunk == 0 ? chunk : 0;
  int fallback = 0;
  for (int c = 8; c <= kMaxChunk; c += 8) {
    if (F % c != 0) continue;
    if (F / c <= sm_count()) return c;
    fallback = c;
  }
  return fallback;
}

}  // namespace

void set_feed_forward_tuning(const FeedForwardTuning& t) {
  const std::lock_guard<std::mutex> lock(g_tuning_mu);
  g_tuning = t;
}
FeedForwardTuning feed_forward_tuning() {
  const std::lock_guard<std::mutex> lock(g_tuning_mu);
  return g_tuning;
}

bool feed_forward(Tensor& x, const Tensor& w13, const Tensor& w2, float eps) {
  const FeedForwardTuning tuning = feed_forward_tuning();
  if (!tuning.fused) return false;
  const int64_t B = x.dim(0), D = x.dim(1), F = w2.dim(1);
  if (B != 1 || x.dtype() != DType::BF16 || w13.dtype() != DType::BF16 || w2.dtype() != DType::BF16)
    return false;
  if (D % 256 != 0 || D > 1024 || F % 8 != 0) return false;
  if (!aligned_to(x.raw(), 16) || !aligned_to(w13.raw(), 16) || !aligned_to(w2.raw(), 16))
    return false;
  const int C = chunk_for(F, tuning.chunk);
  if (C == 0) return false;
  const int blocks = int(F / C);
  int group = tuning.group;
  if (group <= 0) group = std::max(1, int(std::lround(std::sqrt(double(blocks)))));
  group = std::min(group, blocks);
  const int groups = (blocks + group - 1) / group;

  Params p{};
  p.x = x.data<bf16>();
  p.w13 = w13.data<bf16>();
  p.w2 = w2.data<bf16>();
  p.partials = static_cast<float*>(grow_buffer(
      GrowBuffer::FeedForwardPartials, size_t(blocks + groups) * size_t(D) * sizeof(float)));
  p.groups = p.partials + size_t(blocks) * size_t(D);
  p.count = static_cast<unsigned*>(
      grow_buffer(GrowBuffer::FeedForwardSync, size_t(groups + 1) * 4, true));
  p.F = int(F);
  p.group = group;
  p.eps = eps;
  p.trace = tuning.trace;
  p.early_trigger = tuning.early_trigger;
  const size_t smem = size_t(2 * C) * size_t(D) * sizeof(bf16);
  const dim3 grid{unsigned(blocks)};
  switch (D / 256) {
    case 1:
      launch_chunk<1>(C / 8, grid, smem, p);
      break;
    case 2:
      launch_chunk<2>(C / 8, grid, smem, p);
      break;
    case 3:
      launch_chunk<3>(C / 8, grid, smem, p);
      break;
    default:
      launch_chunk<4>(C / 8, grid, smem, p);
      break;
  }
  return true;
}

}  // namespace falcon::ops::cuda
