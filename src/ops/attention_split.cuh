// Split-K attention for few query rows over many keys (decode, flash-decoding style), shared by
// attention_cuda.cu and paged_attention_cuda.cu. Also the path for F32 and for head_dims the
// tensor-core kernel does not cover.
//
// Grid (splits, H, row groups). A block takes one head, R query rows and one chunk of keys;
// its 4 warps take keys in turn, each lane holding VEC consecutive dims of q, k, v, so one key
// costs a warp one coalesced row read and a shuffle reduction. Each warp keeps an online
// softmax (running max m, sum l, accumulator) in the log2 domain; the warps merge in shared
// memory, and with one split the block writes the final row, otherwise (m, l, acc) partials;
// the last split block of a (row group, head) to finish reduces them (counted with an atomic):
// out = sum_s 2^(m_s - M) acc_s / L * sigmoid(lse - sink).
#pragma once

#include <cmath>

#include "ops/cuda_common.cuh"
#include "ops/cuda_tuning.h"

namespace falcon::ops::cuda::attn {

constexpr int kSplitWarps = 4;
// Keys in flight per warp per step: 8 for one or two query rows (decode: latency-bound, more
// loads in flight), 4 for more rows (registers).
template <int R>
constexpr int split_unroll() {
  return R <= 2 ? 8 : 4;
}
constexpr int kKeysPerStep = kSplitWarps * 8;  // chunk granularity: a multiple of every step
constexpr float kLn2 = 0.6931471805599453f;

// Keys of one sequence stored contiguously: k [T, H, hd], v [T, K, hd]. Query row i sits at
// absolute position q_offset + i and sees keys [0, last(p)] (the hybrid mask is a prefix).
struct ContiguousKeys {
  int64_t q_offset, image_begin, image_end;
  __device__ int64_t last_key(int row) const {
    const int64_t p = q_offset + row;
    if (image_end > image_begin && p >= image_begin && p < image_end) return p > image_end - 1 ? p : image_end - 1;
    return p;
  }
  // Row of the k/v tensors holding key j of the sequence of query row `row` (-1: none).
  __device__ int64_t key_row(int /*row*/, int64_t j) const { return j; }
};

// Keys in a paged cache: sequence b = query row b, key j in block block_table[b, j / bs].
// Positions fit in 32 bits (the host checks max_blocks * block_size), so the block lookup uses
// 32-bit arithmetic, and shifts when block_size is a power of two (a 64-bit division per key
// would cost more than the key's arithmetic).
struct PagedKeys {
  const int32_t* block_table;
  const int32_t* seq_lens;
  int max_blocks, block_size, num_blocks;
  int block_shift;  // log2(block_size) when it is a power of two, else -1
  __device__ int64_t last_key(int row) const {
    int64_t n = seq_lens[row];
    const int64_t cap = int64_t(max_blocks) * block_size;
    if (n > cap) n = cap;
    return n - 1;
  }
  __device__ int64_t key_row(int row, int64_t j) const {
    const int jj = int(j);
    const int b = block_shift >= 0 ? jj >> block_shift : jj / block_size;
    const int off = block_shift >= 0 ? jj & (block_size - 1) : jj - b * block_size;
    const int blk = block_table[row * max_blocks + b];
    if (blk < 0 || blk >= num_blocks) return -1;  // a bad table entry masks the key, never reads outside
    return int64_t(blk) * block_size + off;
  }
};

template <typename T>
struct SplitParams {
  const T* q;  // [rows, H, hd]
  const T* k;  // key rows of H * hd
  const T* v;  // value rows of K * hd
  T* out;      // [rows, H, hd]
  const float* sinks;
  float* part_o;   // [splits, rows, H, hd]
  float* part_ml;  // [splits, rows, H, 2]: (max, sum) in the log2 domain
  int* done;       // [row groups, H] split blocks finished; zero between launches
  int rows, H, K, hd;
  int splits, chunk;
  float scale_log2;  // log2(e) / sqrt(hd)
};

__device__ __forceinline__ float gate_factor(float m, float l, float sink) {
  // lse = ln(sum_j e^s_j) = (m + log2 l) ln 2; the output is scaled by sigmoid(lse - sink).
  if (l <= 0.f) return 0.f;  // no visible key: the sink takes all the weight
  const float lse = (m + log2f(l)) * kLn2;
  return 1.0f / (l * (1.0f + expf(sink - lse)));
}

template <typename T, int VEC, int R, typename Keys>
__global__ void __launch_bounds__(kSplitWarps * 32) split_attention_kernel(SplitParams<T> p, Keys keys) {
  extern __shared__ float smem[];
  const int split = blockIdx.x, h = blockIdx.y, row0 = blockIdx.z * R;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int H = p.H, hd = p.hd, kvh = h / (H / p.K);
  const bool lane_on = lane * VEC < hd;
  const int d0 = lane * VEC;

  int64_t last[R];
  int64_t kend = 0;
#pragma unroll
  for (int r = 0; r < R; ++r) {
    last[r] = row0 + r < p.rows ? keys.last_key(row0 + r) : -1;
    kend = last[r] + 1 > kend ? last[r] + 1 : kend;
  }
  const int64_t c0 = int64_t(split) * p.chunk;
  const int64_t c1 = c0 + p.chunk < kend ? c0 + p.chunk : kend;

  float qv[R][VEC];
#pragma unroll
  for (int r = 0; r < R; ++r) {
#pragma unroll
    for (int i = 0; i < VEC; ++i) qv[r][i] = 0.f;
    if (lane_on && row0 + r < p.rows) {
      load_f32<T, VEC>(p.q + (int64_t(row0 + r) * H + h) * hd + d0, qv[r]);
#pragma unroll
      for (int i = 0; i < VEC; ++i) qv[r][i] *= p.scale_log2;
    }
  }
  float m[R], l[R], acc[R][VEC];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    m[r] = -INFINITY;
    l[r] = 0.f;
#pragma unroll
    for (int i = 0; i < VEC; ++i) acc[r][i] = 0.f;
  }

  // All rows of a group share a sequence in the contiguous case; in the paged case R == 1.
  constexpr int kSplitUnroll = split_unroll<R>();
  for (int64_t j0 = c0 + warp; j0 < c1; j0 += kSplitWarps * kSplitUnroll) {
    float kk[kSplitUnroll][VEC], vv[kSplitUnroll][VEC];
    bool ok[kSplitUnroll];
#pragma unroll
    for (int u = 0; u < kSplitUnroll; ++u) {
      const int64_t j = j0 + int64_t(u) * kSplitWarps;
      const int64_t kr = j < c1 ? keys.key_row(row0, j) : -1;
      ok[u] = kr >= 0;
      if (ok[u] && lane_on) {
        load_f32<T, VEC>(p.k + (kr * H + h) * hd + d0, kk[u]);
        load_f32<T, VEC>(p.v + (kr * p.K + kvh) * hd + d0, vv[u]);
      } else {
#pragma unroll
        for (int i = 0; i < VEC; ++i) kk[u][i] = vv[u][i] = 0.f;
      }
    }
    float s[R][kSplitUnroll];
#pragma unroll
    for (int r = 0; r < R; ++r) {
#pragma unroll
      for (int u = 0; u < kSplitUnroll; ++u) {
        float d = 0.f;
#pragma unroll
        for (int i = 0; i < VEC; ++i) d += qv[r][i] * kk[u][i];
        s[r][u] = warp_sum(d);
      }
    }
#pragma unroll
    for (int r = 0; r < R; ++r) {
      float mx = m[r];
#pragma unroll
      for (int u = 0; u < kSplitUnroll; ++u) {
        const int64_t j = j0 + int64_t(u) * kSplitWarps;
        if (!ok[u] || j > last[r]) s[r][u] = -INFINITY;
        mx = fmaxf(mx, s[r][u]);
      }
      if (mx == -INFINITY) continue;  // nothing visible to this row yet
      const float alpha = exp2f(m[r] - mx);
      l[r] *= alpha;
#pragma unroll
      for (int i = 0; i < VEC; ++i) acc[r][i] *= alpha;
#pragma unroll
      for (int u = 0; u < kSplitUnroll; ++u) {
        const float pr = exp2f(s[r][u] - mx);
        l[r] += pr;
#pragma unroll
        for (int i = 0; i < VEC; ++i) acc[r][i] += pr * vv[u][i];
      }
      m[r] = mx;
    }
  }

  // Merge the warps: smem holds m, l per (warp, row) and acc per (warp, row, dim).
  float* sm_ml = smem;                                  // [warps][R][2]
  float* sm_acc = smem + kSplitWarps * R * 2;           // [warps][R][hd]
#pragma unroll
  for (int r = 0; r < R; ++r) {
    if (lane == 0) {
      sm_ml[(warp * R + r) * 2] = m[r];
      sm_ml[(warp * R + r) * 2 + 1] = l[r];
    }
    if (lane_on) {
#pragma unroll
      for (int i = 0; i < VEC; ++i) sm_acc[(warp * R + r) * hd + d0 + i] = acc[r][i];
    }
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < R * hd; idx += blockDim.x) {
    const int r = idx / hd, d = idx % hd;
    const int row = row0 + r;
    if (row >= p.rows) continue;
    float M = -INFINITY;
    for (int w = 0; w < kSplitWarps; ++w) M = fmaxf(M, sm_ml[(w * R + r) * 2]);
    float L = 0.f, A = 0.f;
    if (M != -INFINITY) {
      for (int w = 0; w < kSplitWarps; ++w) {
        const float f = exp2f(sm_ml[(w * R + r) * 2] - M);
        L += f * sm_ml[(w * R + r) * 2 + 1];
        A += f * sm_acc[(w * R + r) * hd + d];
      }
    }
    const int64_t o = (int64_t(row) * H + h) * hd + d;
    if (p.splits == 1) {
      p.out[o] = from_f32<T>(A * gate_factor(M, L, p.sinks[h]));
    } else {
      const int64_t part = (int64_t(split) * p.rows + row) * H + h;
      p.part_o[part * hd + d] = A;
      if (d == 0) {
        p.part_ml[part * 2] = M;
        p.part_ml[part * 2 + 1] = L;
      }
    }
  }
  if (p.splits == 1) return;

  // The last split block of this (row group, head) to finish merges all splits' partials: no
  // second kernel, so a decode step pays one launch for its attention.
  __shared__ bool is_last;
  __threadfence();  // this block's partials are visible device-wide before it counts itself done
  __syncthreads();
  if (threadIdx.x == 0) {
    int* counter = p.done + int64_t(blockIdx.z) * H + h;
    is_last = atomicAdd(counter, 1) == p.splits - 1;
    if (is_last) *counter = 0;  // ready for the next launch (and graph replay)
  }
  __syncthreads();
  if (!is_last) return;
  __threadfence();
  // Reuse the merge buffer: all (m, l) partials load in one parallel pass (a serial loop of
  // dependent L2 reads would cost a round trip per split), then one thread per row reduces them
  // in shared memory into weights 2^(m_s - M), L and M.
  float* wgt = smem;                      // [R][splits]: m_s, then the weights
  float* lsum = smem + R * p.splits;      // [R][splits]: l_s
  float* rowL = lsum + R * p.splits;      // [R]
  float* rowM = rowL + R;                 // [R]
  for (int idx = threadIdx.x; idx < R * p.splits; idx += blockDim.x) {
    const int r = idx / p.splits, sp = idx % p.splits;
    const int row = row0 + r;
    const float* ml = p.part_ml + ((int64_t(sp) * p.rows + row) * H + h) * 2;
    wgt[idx] = row < p.rows ? __ldcg(ml) : -INFINITY;
    lsum[idx] = row < p.rows ? __ldcg(ml + 1) : 0.f;
  }
  __syncthreads();
  if (threadIdx.x < R) {
    const int r = threadIdx.x;
    float M = -INFINITY, L = 0.f;
    for (int sp = 0; sp < p.splits; ++sp) M = fmaxf(M, wgt[r * p.splits + sp]);
    for (int sp = 0; sp < p.splits; ++sp) {
      const float f = M == -INFINITY ? 0.f : exp2f(wgt[r * p.splits + sp] - M);
      L += f * lsum[r * p.splits + sp];
      wgt[r * p.splits + sp] = f;
    }
    rowL[r] = L;
    rowM[r] = M;
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < R * hd; idx += blockDim.x) {
    const int r = idx / hd, d = idx % hd;
    const int row = row0 + r;
    if (row >= p.rows) continue;
    float A = 0.f;
#pragma unroll 8
    for (int sp = 0; sp < p.splits; ++sp) {
      A += wgt[r * p.splits + sp] * __ldcg(p.part_o + ((int64_t(sp) * p.rows + row) * H + h) * hd + d);
    }
    p.out[(int64_t(row) * H + h) * hd + d] = from_f32<T>(A * gate_factor(rowM[r], rowL[r], p.sinks[h]));
  }
}

// Chooses splits for `rows` query rows over at most `max_keys` keys per row so that the grid
// holds a few blocks per multiprocessor; chunks are whole steps of the key loop.
inline void choose_splits(int64_t max_keys, int64_t other_blocks, int hd, int& splits, int& chunk) {
  const int per_sm = attention_tuning().split_blocks_per_sm;
  const int64_t target = int64_t(sm_count()) * (per_sm > 0 ? per_sm : hd <= 64 ? 8 : 4);
  int64_t want = (target + other_blocks - 1) / (other_blocks > 0 ? other_blocks : 1);
  // One step of the key loop per warp is the smallest useful chunk: a decode row then spreads
  // over enough blocks to keep every multiprocessor's loads in flight (the kernel is latency-bound).
  const int64_t min_chunk = kKeysPerStep;
  const int64_t max_useful = (max_keys + min_chunk - 1) / min_chunk;
  if (want > max_useful) want = max_useful;
  if (want > 128) want = 128;
  if (want < 1) want = 1;
  int64_t c = (max_keys + want - 1) / want;
  c = (c + kKeysPerStep - 1) / kKeysPerStep * kKeysPerStep;
  if (c < kKeysPerStep) c = kKeysPerStep;
  chunk = int(c);
  splits = int((max_keys + c - 1) / c);
  if (splits < 1) splits = 1;
}

template <typename T, int VEC, int R, typename Keys>
void launch_split_vec_rows(SplitParams<T> p, Keys keys) {
  const dim3 grid(unsigned(p.splits), unsigned(p.H), unsigned((p.rows + R - 1) / R));
  const size_t merge = size_t(kSplitWarps) * R * (2 + p.hd), combine = size_t(R) * (2 * p.splits + 2);
  const size_t smem = (merge > combine ? merge : combine) * sizeof(float);
  split_attention_kernel<T, VEC, R, Keys><<<grid, kSplitWarps * 32, smem, stream()>>>(p, keys);
  FALCON_CUDA_CHECK_LAUNCH("split_attention_kernel");
}

template <typename T, int VEC, typename Keys>
void launch_split_vec(SplitParams<T> p, Keys keys, int rows_per_block) {
  switch (rows_per_block) {
    case 1: launch_split_vec_rows<T, VEC, 1>(p, keys); break;
    case 2: launch_split_vec_rows<T, VEC, 2>(p, keys); break;
    case 4: launch_split_vec_rows<T, VEC, 4>(p, keys); break;
    default: launch_split_vec_rows<T, VEC, 8>(p, keys); break;
  }
}

// Runs the split kernel: picks the per-lane vector width from head_dim and the alignment of
// the tensors, and the scratch for the partials. rows_per_block is 1, 2, 4 or 8.
template <typename T, typename Keys>
void run_split_attention(SplitParams<T> p, Keys keys, int rows_per_block, int64_t max_keys) {
  const int64_t groups = (p.rows + rows_per_block - 1) / rows_per_block;
  choose_splits(max_keys, int64_t(p.H) * groups, p.hd, p.splits, p.chunk);
  if (p.splits > 1) {
    const size_t n = size_t(p.splits) * size_t(p.rows) * size_t(p.H);
    auto* buf = static_cast<float*>(scratch(Scratch::AttentionPartials, n * size_t(p.hd + 2) * sizeof(float)));
    p.part_o = buf;
    p.part_ml = buf + n * size_t(p.hd);
    p.done = static_cast<int*>(scratch(Scratch::AttentionCounters, size_t(groups * p.H) * sizeof(int)));
  }
  // VEC: the smallest power of two with hd <= 32 * VEC, if it divides hd and the rows stay
  // aligned for VEC-wide loads; else 1 (any hd up to 32).
  int vec = 1;
  while (vec < 8 && 32 * vec < p.hd) vec *= 2;
  const auto ok = [&](int v) {
    const size_t bytes = size_t(v) * sizeof(T);
    return p.hd % v == 0 && 32 * v >= p.hd && aligned_to(p.q, bytes) && aligned_to(p.k, bytes) &&
           aligned_to(p.v, bytes) && aligned_to(p.out, bytes);
  };
  if (!ok(vec)) {
    throw Unsupported("attention (cuda): head_dim " + std::to_string(p.hd) + " (must be <= 256, a multiple of " +
                      std::to_string(vec) + ")");
  }
  switch (vec) {
    case 1: launch_split_vec<T, 1>(p, keys, rows_per_block); break;
    case 2: launch_split_vec<T, 2>(p, keys, rows_per_block); break;
    case 4: launch_split_vec<T, 4>(p, keys, rows_per_block); break;
    default: launch_split_vec<T, 8>(p, keys, rows_per_block); break;
  }
}

}  // namespace falcon::ops::cuda::attn
