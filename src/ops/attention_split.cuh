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
//
// One query row per sequence (decode, paged decode) with head_dim 64 or 128 takes
// decode_attention_kernel below instead: lane groups of 8 per key, keys streamed by cp.async.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <mutex>
#include <type_traits>

#include <cooperative_groups.h>

#include "ops/cuda_common.cuh"
#include "ops/cuda_tuning.h"
#include "ops/rope_angles.cuh"

namespace falcon::ops::cuda::attn {

namespace cg = cooperative_groups;

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
  // Keys visible to query row `row`, at most `cap` (the keys that exist).
  __device__ int num_keys(int row, int cap) const {
    const int64_t n = last_key(row) + 1;
    return int(n < cap ? n : cap);
  }
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
  __device__ int num_keys(int row, int /*cap*/) const { return int(last_key(row) + 1); }  // clamped to the table
};

// The paged keys of a pool [num_blocks, block_size, ...] through a table [rows, max_blocks].
inline PagedKeys paged_keys(const int32_t* block_table, const int32_t* seq_lens, int64_t max_blocks,
                            int64_t block_size, int64_t num_blocks) {
  int shift = -1;
  for (int b = 0; b < 31; ++b) {
    if (int64_t(1) << b == block_size) shift = b;
  }
  return {block_table, seq_lens, int(max_blocks), int(block_size), int(num_blocks), shift};
}

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

// ---- decode: one query row per sequence ------------------------------------------------------
//
// Grid (splits, H / HB, rows); a block takes one row, HB query heads sharing one kv head (the
// GQA pair, so V is read once for both) and one chunk of that row's keys. Lanes work in groups
// of 8 per key: lane i of a group holds the 16-byte chunks i, i + 8, ... of a head row (HD / 8
// dims), so a score costs 3 shuffles, not a whole-warp reduction, and a warp scores 4 keys at
// once. Each group keeps its own online softmax over its keys (U per step) and merges with the
// others only at the end. Every thread cp.asyncs exactly the chunks it will read itself into its
// own slots of a ring of STAGES steps in shared memory: STAGES - 1 steps of loads stay in flight
// while one is computed, and no barrier is needed until the final merge. With few paged rows
// (latency-bound) the ring holds the whole split, copied before the dependent-launch wait but
// for the row's newest key: after the wait only q, that key and the arithmetic are left. The split of a row's
// keys is computed from its length on the device, so the grid depends on the shapes only. The
// splits merge in a thread-block cluster through distributed shared memory, or as above: the
// last block to finish reduces partials in global memory.
constexpr int kDecodeMaxWarps = 8;
constexpr int kDecodeMaxStages = 8;
constexpr int kDecodeMaxSplits = 256;

template <typename T>
struct DecodeParams {
  const T* q;  // [rows, H, HD]
  const T* k;  // key rows of H * HD
  const T* v;  // value rows of K * HD
  T* out;      // [rows, H, HD]
  const float* sinks;
  float* part_o;   // [splits, rows, H, HD]
  float* part_ml;  // [splits, rows, H, 2]
  int* done;       // [rows, H / HB]; zero between launches
  int H, K;
  int splits, stages;
  bool cluster;  // the splits of a (row, head group) are one cluster: merge in shared memory
  int max_keys;  // keys that exist (T, or the block table's capacity)
  float scale_log2;
  bool prefetch;  // start the split's keys towards L2 before waiting for the kernel before
  // The whole split in shared memory (stages >= its steps), copied before the wait but for each
  // row's newest key: only for paged keys, whose kernel before writes nothing else.
  bool stage_all;
  // The kernel after may launch at this one's start (its blocks load their weights while these
  // copy keys), or only once every block is past its key loop.
  bool early_trigger;
  // The attention input stage folded in (the kernel's QKV; paged_attention_qkv.h): q and the
  // step's key and value come from the rows of the qkv product; the key is normalised and
  // rotated here and written, with the value, to the row's newest position.
  const T* qkv;          // [rows, (H + 2K) * HD]
  const int32_t* pos_t;  // [rows]
  const float* pos_hw;   // [rows, 2]
  const float* golden;   // [H, HD / 4, 2]
  T* k_pool;             // k and v, written at the newest position
  T* v_pool;
  float eps;
  RopeInvFreq inv_freq;
};

__device__ __forceinline__ void decode_cp_async16(void* dst, const void* src, int src_bytes) {
  const auto d = static_cast<uint32_t>(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(src), "r"(src_bytes) : "memory");
}
__device__ __forceinline__ void decode_cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
// Waits until at most n of this thread's groups are pending (n is a runtime value: the
// instruction takes an immediate, hence the switch; uniform across the block).
__device__ __forceinline__ void decode_cp_async_wait(int n) {
  switch (n) {
    case 0: asm volatile("cp.async.wait_group 0;\n" ::: "memory"); break;
    case 1: asm volatile("cp.async.wait_group 1;\n" ::: "memory"); break;
    case 2: asm volatile("cp.async.wait_group 2;\n" ::: "memory"); break;
    case 3: asm volatile("cp.async.wait_group 3;\n" ::: "memory"); break;
    case 4: asm volatile("cp.async.wait_group 4;\n" ::: "memory"); break;
    case 5: asm volatile("cp.async.wait_group 5;\n" ::: "memory"); break;
    case 6: asm volatile("cp.async.wait_group 6;\n" ::: "memory"); break;
    default: asm volatile("cp.async.wait_group 7;\n" ::: "memory"); break;
  }
}

template <typename T, int HD, int HB>
struct DecodeShape {
  static constexpr int E = 16 / int(sizeof(T));            // elements per 16-byte chunk
  static constexpr int LC = HD * int(sizeof(T)) / 128;     // chunks per lane per head row
  static constexpr int D = LC * E;                         // dims per lane (HD / 8)
  static constexpr int U = sizeof(T) == 4 ? 1 : 2;         // keys per lane group per step
  static constexpr int SLOTS = U * (HB + 1) * LC;          // 16-byte ring slots per thread per stage
  static_assert(LC >= 1 && HD * int(sizeof(T)) % 128 == 0, "a head row must split into 8 lanes of whole chunks");
};

// RMS-normalises one head held by a lane group (8 lanes; lane gl holds the 16-byte chunks
// gl + 8i of the row; mask: the lanes taking part), rotates it with the (cos, sin) table `rope`
// ([HD / 4] temporal pairs, then [heads][HD / 4] spatial ones, head hh's read when `spatial`)
// and rounds it to T, as qk_norm_rope stores it.
template <typename T, int HD>
__device__ __forceinline__ void lane_group_norm_rotate(float (&x)[HD / 8], int gl, const float2* rope, int hh,
                                                       bool spatial, float eps, unsigned mask) {
  constexpr int E = 16 / int(sizeof(T)), LC = HD * int(sizeof(T)) / 128, Q4 = HD / 4;
  float ss = 0.f;
#pragma unroll
  for (int d = 0; d < HD / 8; ++d) ss += x[d] * x[d];
  ss += __shfl_xor_sync(mask, ss, 1);
  ss += __shfl_xor_sync(mask, ss, 2);
  ss += __shfl_xor_sync(mask, ss, 4);
  const float inv = 1.0f / sqrtf(ss / float(HD) + eps);
#pragma unroll
  for (int i = 0; i < LC; ++i) {
#pragma unroll
    for (int e = 0; e < E; e += 2) {
      const int pair = ((gl + 8 * i) * E + e) / 2;
      const float a = x[i * E + e] * inv, b = x[i * E + e + 1] * inv;
      float2 cs = make_float2(1.f, 0.f);
      if (pair < Q4) {
        cs = rope[pair];
      } else if (spatial) {
        cs = rope[Q4 + hh * Q4 + pair - Q4];
      }
      x[i * E + e] = to_f32(from_f32<T>(a * cs.x - b * cs.y));
      x[i * E + e + 1] = to_f32(from_f32<T>(a * cs.y + b * cs.x));
    }
  }
}

// Merges the online-softmax states (max m, sum l, output acc, log2 units) of the 4 lane groups
// of a warp: lanes i, i + 8, i + 16, i + 24 hold the same dims; every lane ends with the merge.
template <int HB, int D>
__device__ __forceinline__ void merge_lane_groups(float (&m)[HB], float (&l)[HB], float (&acc)[HB][D]) {
#pragma unroll
  for (int hh = 0; hh < HB; ++hh) {
    float M = fmaxf(m[hh], __shfl_xor_sync(0xffffffffu, m[hh], 8));
    M = fmaxf(M, __shfl_xor_sync(0xffffffffu, M, 16));
    const float f = m[hh] == -INFINITY ? 0.f : exp2f(m[hh] - M);
    l[hh] *= f;
    l[hh] += __shfl_xor_sync(0xffffffffu, l[hh], 8);
    l[hh] += __shfl_xor_sync(0xffffffffu, l[hh], 16);
#pragma unroll
    for (int d = 0; d < D; ++d) {
      float a = acc[hh][d] * f;
      a += __shfl_xor_sync(0xffffffffu, a, 8);
      a += __shfl_xor_sync(0xffffffffu, a, 16);
      acc[hh][d] = a;
    }
    m[hh] = M;
  }
}

// QKV: the kernel also runs the attention input stage (see DecodeParams).
template <typename T, int HD, int HB, typename Keys, bool QKV = false>
__global__ void __launch_bounds__(kDecodeMaxWarps * 32) decode_attention_kernel(DecodeParams<T> p, Keys keys) {
  using Sh = DecodeShape<T, HD, HB>;
  constexpr int E = Sh::E, LC = Sh::LC, D = Sh::D, U = Sh::U, SLOTS = Sh::SLOTS;
  extern __shared__ uint4 ring[];  // [stage][slot][thread]: each thread's slots are its own
  const int nt = int(blockDim.x), tid = int(threadIdx.x);
  const int gl = tid & 7, grp = tid >> 3, warp = tid >> 5, lane = tid & 31, nwarps = nt >> 5;
  const int split = int(blockIdx.x), hg = int(blockIdx.y), row = int(blockIdx.z), rows = int(gridDim.z);
  const int H = p.H, h0 = hg * HB, kvh = h0 / (H / p.K);
  const int S = p.stages, step = (nt >> 3) * U;
  // The output product after this kernel may start now and load its weights.
  if (p.early_trigger) pdl_allow_dependents();

  // This split's keys: the row's n keys cut into `splits` equal chunks (n lives on the device).
  // Lengths and block tables come from the host, not from the kernel before.
  int n = keys.num_keys(row, p.max_keys);
  if (n < 0) n = 0;
  const int chunk = int((int64_t(n) + p.splits - 1) / p.splits);
  const int c0 = int(int64_t(split) * chunk < n ? int64_t(split) * chunk : n);
  const int c1 = int(int64_t(c0) + chunk < n ? int64_t(c0) + chunk : n);
  const int iters = (c1 - c0 + step - 1) / step;
  const int64_t kstride = int64_t(H) * HD, vstride = int64_t(p.K) * HD;

  uint32_t okbits = 0;  // bit stage * U + u: key u of the step held by that stage exists
  // Copies (the chunks this thread reads of) key j, table row r (< 0: missing, zero-filled, so
  // its value row adds 0, never NaN) into slot u of `stage`.
  const auto copy_key = [&](int64_t r, int stage, int u) {
    const bool ok = r >= 0;
    const T* kp = ok ? p.k + r * kstride + int64_t(h0) * HD : p.k;
    const T* vp = ok ? p.v + r * vstride + int64_t(kvh) * HD : p.v;
    const int bytes = ok ? 16 : 0;
    uint4* dst = ring + int64_t(stage * SLOTS + u * (HB + 1) * LC) * nt + tid;
#pragma unroll
    for (int hh = 0; hh < HB; ++hh) {
#pragma unroll
      for (int i = 0; i < LC; ++i) decode_cp_async16(dst + (hh * LC + i) * nt, kp + hh * HD + (gl + 8 * i) * E, bytes);
    }
#pragma unroll
    for (int i = 0; i < LC; ++i) decode_cp_async16(dst + (HB * LC + i) * nt, vp + (gl + 8 * i) * E, bytes);
  };
  // QKV: the newest key (normalised, rotated for each of the HB heads) and value, as the
  // chunks of the lane group whose ring slot takes that key, lane gl's at [i][gl] (shared
  // memory, not registers: the ring's refills may need it late in the loop).
  __shared__ uint4 newest_kv[QKV ? (HB + 1) * LC : 1][8];
  const auto put_newest = [&](int stage, int u) {
    if constexpr (QKV) {
      uint4* dst = ring + int64_t(stage * SLOTS + u * (HB + 1) * LC) * nt + tid;
#pragma unroll
      for (int i = 0; i < (HB + 1) * LC; ++i) dst[i * nt] = newest_kv[i][gl];
    }
  };
  // Step `it` of the split into `stage`; key `defer` is marked present but not copied (QKV,
  // once the registers hold it: written from them).
  const auto issue = [&](int it, int stage, int defer, bool put) {
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int j = c0 + it * step + grp * U + u;
      const int64_t r = j < c1 ? keys.key_row(row, j) : -1;
      const uint32_t bit = 1u << (stage * U + u);
      okbits = r >= 0 ? (okbits | bit) : (okbits & ~bit);
      if (j != defer || r < 0) {
        copy_key(r, stage, u);
      } else if (QKV && put) {
        put_newest(stage, u);
      }
    }
  };

  // The newest key of a paged row (position n - 1) is the one the kernel before may still be
  // writing (qk_norm_rope_paged), or the one this kernel writes (QKV); every other key was
  // written by earlier steps.
  const int newest = n - 1;
  if (p.stage_all) {
    // The whole split (S >= iters stages) is copied into shared memory before the wait, all
    // but the newest key: after it only q, that key and the arithmetic are left.
    for (int it = 0; it < iters; ++it) issue(it, it, newest, false);
    decode_cp_async_commit();
  } else if (p.prefetch) {
    // Launched as a programmatic dependent (of the kernel writing this step's key and q), the
    // split's keys and values start towards L2 while that kernel finishes. A prefetch cannot
    // leave a stale copy (L2 is where the writes land); everything is read after the wait.
    constexpr int KL = HB * HD * int(sizeof(T)) / 128, VL = HD * int(sizeof(T)) / 128;  // lines per key
    for (int idx = tid; idx < (c1 - c0) * (KL + VL); idx += nt) {
      const int j = c0 + idx / (KL + VL), li = idx % (KL + VL);
      const int64_t r = keys.key_row(row, j);
      if (r < 0) continue;
      const T* line = li < KL ? p.k + r * kstride + int64_t(h0) * HD + li * (128 / int(sizeof(T)))
                              : p.v + r * vstride + int64_t(kvh) * HD + (li - KL) * (128 / int(sizeof(T)));
      prefetch_l2(line);
    }
  }
  // QKV: the rotation's cos/sin, from host inputs only (before the wait, after the copies are
  // under way): [HD / 4] temporal, then [HB][HD / 4] spatial, as (cos, sin) pairs.
  constexpr int Q4 = HD / 4;
  __shared__ float2 rope[QKV ? Q4 * (1 + HB) : 1];
  bool spatial = false;
  if constexpr (QKV) {
    const float ph = p.pos_hw[2 * row], pw = p.pos_hw[2 * row + 1];
    spatial = ph != 0.f || pw != 0.f;
    const float pt = float(p.pos_t[row]);
    for (int i = tid; i < Q4 * (spatial ? 1 + HB : 1); i += nt) {
      const float angle = i < Q4 ? rope_temporal_angle(pt, p.inv_freq.f[i])
                                 : rope_spatial_angle(ph, pw, p.golden + 2 * ((h0 + (i - Q4) / Q4) * Q4 + i % Q4));
      rope_cos_sin<T>(angle, &rope[i].x, &rope[i].y);
    }
    __syncthreads();
  }
  asm volatile("griddepcontrol.wait;\n" ::: "memory");

  // QKV: q and the newest key normalised, rotated with head h0 + hh's angles, rounded to T.
  const auto norm_rotate = [&](float (&x)[D], int hh, unsigned mask) {
    lane_group_norm_rotate<T, HD>(x, gl, rope, hh, spatial, p.eps, mask);
  };
  const int64_t qkv_row = int64_t(row) * (H + 2 * p.K) * HD;

  float qv[HB][D];
#pragma unroll
  for (int hh = 0; hh < HB; ++hh) {
    const T* qp = QKV ? p.qkv + qkv_row + int64_t(h0 + hh) * HD : p.q + (int64_t(row) * H + h0 + hh) * HD;
#pragma unroll
    for (int i = 0; i < LC; ++i) {
      float f[E];
      unpack16<T>(*reinterpret_cast<const uint4*>(qp + (gl + 8 * i) * E), f);
#pragma unroll
      for (int e = 0; e < E; ++e) qv[hh][i * E + e] = f[e];
    }
    if constexpr (QKV) norm_rotate(qv[hh], hh, 0xffffffffu);
#pragma unroll
    for (int d = 0; d < D; ++d) qv[hh][d] *= p.scale_log2;
  }

  // QKV: the lane group whose slot takes the newest key builds it (and the value) in registers
  // and writes both to the pool; the value once per kv head.
  if constexpr (QKV) {
    if (newest >= c0 && newest < c1 && (newest - c0) % step / U == grp) {
      const unsigned mask = 0xffu << (lane & 24);
      const T* kin = p.qkv + qkv_row + int64_t(H + kvh) * HD;
      const T* vin = kin + int64_t(p.K) * HD;
      float kf[D];
#pragma unroll
      for (int i = 0; i < LC; ++i) {
        float f[E];
        unpack16<T>(*reinterpret_cast<const uint4*>(kin + (gl + 8 * i) * E), f);
#pragma unroll
        for (int e = 0; e < E; ++e) kf[i * E + e] = f[e];
        newest_kv[HB * LC + i][gl] = *reinterpret_cast<const uint4*>(vin + (gl + 8 * i) * E);
      }
      const int64_t r = keys.key_row(row, newest);
#pragma unroll
      for (int hh = 0; hh < HB; ++hh) {
        float x[D];
#pragma unroll
        for (int d = 0; d < D; ++d) x[d] = kf[d];
        norm_rotate(x, hh, mask);
#pragma unroll
        for (int i = 0; i < LC; ++i) {
          float f[E];
#pragma unroll
          for (int e = 0; e < E; ++e) f[e] = x[i * E + e];
          const uint4 packed = pack16<T>(f);
          newest_kv[hh * LC + i][gl] = packed;
          if (r >= 0) *reinterpret_cast<uint4*>(p.k_pool + r * kstride + int64_t(h0 + hh) * HD + (gl + 8 * i) * E) = packed;
        }
      }
      if (r >= 0 && h0 % (H / p.K) == 0) {
#pragma unroll
        for (int i = 0; i < LC; ++i) {
          *reinterpret_cast<uint4*>(p.v_pool + r * vstride + int64_t(kvh) * HD + (gl + 8 * i) * E) = newest_kv[HB * LC + i][gl];
        }
      }
    }
  }

  float m[HB], l[HB], acc[HB][D];
#pragma unroll
  for (int hh = 0; hh < HB; ++hh) {
    m[hh] = -INFINITY;
    l[hh] = 0.f;
#pragma unroll
    for (int d = 0; d < D; ++d) acc[hh][d] = 0.f;
  }

  int in_stage = 0;
  const int defer = QKV ? newest : -1;  // the key written from registers, in the ring
  if (p.stage_all) {
    if (newest >= c0 && newest < c1) {
      const int rel = newest - c0, u = rel % step % U;
      if ((rel % step) / U == grp) {
        if constexpr (QKV) {
          // A missing block (r < 0) left the key zero-filled and masked; nothing to write.
          if (keys.key_row(row, newest) >= 0) put_newest(rel / step, u);
        } else {
          copy_key(keys.key_row(row, newest), rel / step, u);
        }
      }
    }
    decode_cp_async_commit();
  } else {
    for (int s = 0; s < S - 1; ++s) {
      if (s < iters) issue(s, in_stage, defer, true);
      decode_cp_async_commit();  // empty groups keep the count uniform
      in_stage = in_stage + 1 == S ? 0 : in_stage + 1;
    }
  }
  int stage = 0;
  for (int it = 0; it < iters; ++it) {
    if (p.stage_all) {
      if (it == 0) decode_cp_async_wait(0);  // every copy of this thread has landed
    } else {
      // Refill the stage computed last step (this thread read it: its loads are done).
      if (it + S - 1 < iters) issue(it + S - 1, in_stage, defer, true);
      decode_cp_async_commit();
      in_stage = in_stage + 1 == S ? 0 : in_stage + 1;
      decode_cp_async_wait(S - 1);  // this thread's copies for step `it` have landed
    }

    const uint4* src = ring + int64_t(stage * SLOTS) * nt + tid;
    float s[HB][U], vf[U][D];
#pragma unroll
    for (int u = 0; u < U; ++u) {
#pragma unroll
      for (int hh = 0; hh < HB; ++hh) {
        float d0 = 0.f, d1 = 0.f;  // two chains: the FMA latency, not its throughput, bounds one
#pragma unroll
        for (int i = 0; i < LC; ++i) {
          float f[E];
          unpack16<T>(src[((u * (HB + 1) + hh) * LC + i) * nt], f);
#pragma unroll
          for (int e = 0; e < E; e += 2) {
            d0 = fmaf(qv[hh][i * E + e], f[e], d0);
            d1 = fmaf(qv[hh][i * E + e + 1], f[e + 1], d1);
          }
        }
        s[hh][u] = d0 + d1;
      }
#pragma unroll
      for (int i = 0; i < LC; ++i) {
        float f[E];
        unpack16<T>(src[((u * (HB + 1) + HB) * LC + i) * nt], f);
#pragma unroll
        for (int e = 0; e < E; ++e) vf[u][i * E + e] = f[e];
      }
    }
#pragma unroll
    for (int o = 1; o < 8; o <<= 1) {
#pragma unroll
      for (int hh = 0; hh < HB; ++hh) {
#pragma unroll
        for (int u = 0; u < U; ++u) s[hh][u] += __shfl_xor_sync(0xffffffffu, s[hh][u], o);
      }
    }
#pragma unroll
    for (int hh = 0; hh < HB; ++hh) {
      float mx = m[hh];
#pragma unroll
      for (int u = 0; u < U; ++u) {
        if (!((okbits >> (stage * U + u)) & 1u)) s[hh][u] = -INFINITY;
        mx = fmaxf(mx, s[hh][u]);
      }
      if (mx == -INFINITY) continue;  // nothing visible to this group yet
      if (mx > m[hh]) {               // rescale only when the max moves (rarely after the first keys)
        const float alpha = exp2f(m[hh] - mx);
        l[hh] *= alpha;
#pragma unroll
        for (int d = 0; d < D; ++d) acc[hh][d] *= alpha;
        m[hh] = mx;
      }
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const float pr = exp2f(s[hh][u] - mx);
        l[hh] += pr;
#pragma unroll
        for (int d = 0; d < D; ++d) acc[hh][d] = fmaf(pr, vf[u][d], acc[hh][d]);
      }
    }
    stage = stage + 1 == S ? 0 : stage + 1;
  }
  decode_cp_async_wait(0);
  if (!p.early_trigger) pdl_allow_dependents();

  merge_lane_groups<HB, D>(m, l, acc);  // the 4 lane groups of each warp
  // Then the warps, in shared memory (the ring is free once every thread is past its loop).
  float* sm_ml = reinterpret_cast<float*>(ring);  // [warps][HB][2]
  float* sm_acc = sm_ml + nwarps * HB * 2;         // [warps][HB][HD]
  float* res_ml = sm_acc + nwarps * HB * HD;       // [HB][2]: the block's result, for the cluster merge
  float* res_acc = res_ml + HB * 2;                // [HB][HD]
  __syncthreads();
  if (lane < 8) {
#pragma unroll
    for (int hh = 0; hh < HB; ++hh) {
      if (lane == 0) {
        sm_ml[(warp * HB + hh) * 2] = m[hh];
        sm_ml[(warp * HB + hh) * 2 + 1] = l[hh];
      }
#pragma unroll
      for (int i = 0; i < LC; ++i) {
#pragma unroll
        for (int e = 0; e < E; ++e) sm_acc[(warp * HB + hh) * HD + (gl + 8 * i) * E + e] = acc[hh][i * E + e];
      }
    }
  }
  __syncthreads();
  for (int idx = tid; idx < HB * HD; idx += nt) {
    const int hh = idx / HD, d = idx % HD;
    float M = -INFINITY;
    for (int w = 0; w < nwarps; ++w) M = fmaxf(M, sm_ml[(w * HB + hh) * 2]);
    float L = 0.f, A = 0.f;
    if (M != -INFINITY) {
      for (int w = 0; w < nwarps; ++w) {
        const float f = exp2f(sm_ml[(w * HB + hh) * 2] - M);
        L += f * sm_ml[(w * HB + hh) * 2 + 1];
        A += f * sm_acc[(w * HB + hh) * HD + d];
      }
    }
    const int64_t o = (int64_t(row) * H + h0 + hh) * HD + d;
    if (p.splits == 1) {
      p.out[o] = from_f32<T>(A * gate_factor(M, L, p.sinks[h0 + hh]));
    } else if (p.cluster) {
      res_acc[idx] = A;
      if (d == 0) {
        res_ml[hh * 2] = M;
        res_ml[hh * 2 + 1] = L;
      }
    } else {
      const int64_t part = (int64_t(split) * rows + row) * H + h0 + hh;
      p.part_o[part * HD + d] = A;
      if (d == 0) {
        p.part_ml[part * 2] = M;
        p.part_ml[part * 2 + 1] = L;
      }
    }
  }
  if (p.splits == 1) return;

  if (p.cluster) {
    // The splits of this (row, head group) form one thread-block cluster: they merge through
    // distributed shared memory, each block reducing a slice of the outputs over all the
    // blocks' results (no partials in global memory, no counter, no fences).
    cg::cluster_group cluster = cg::this_cluster();
    cluster.sync();  // every block's result is in its shared memory
    const int ns = p.splits, rank = int(cluster.block_rank());
    const int per = (HB * HD + ns - 1) / ns;
    const int end = (rank + 1) * per < HB * HD ? (rank + 1) * per : HB * HD;
    for (int idx = rank * per + tid; idx < end; idx += nt) {
      const int hh = idx / HD;
      float M = -INFINITY;
      for (int r = 0; r < ns; ++r) M = fmaxf(M, cluster.map_shared_rank(res_ml, r)[hh * 2]);
      float L = 0.f, A = 0.f;
      if (M != -INFINITY) {
        for (int r = 0; r < ns; ++r) {
          const float* ml = cluster.map_shared_rank(res_ml, r);
          const float f = exp2f(ml[hh * 2] - M);
          L += f * ml[hh * 2 + 1];
          A += f * cluster.map_shared_rank(res_acc, r)[idx];
        }
      }
      p.out[(int64_t(row) * H + h0) * HD + idx] = from_f32<T>(A * gate_factor(M, L, p.sinks[h0 + hh]));
    }
    cluster.sync();  // the other blocks read this block's shared memory until here
    return;
  }

  // The last split block of this (row, head group) merges the partials (one launch per call).
  __shared__ bool is_last;
  __threadfence();
  __syncthreads();
  if (tid == 0) {
    int* counter = p.done + int64_t(row) * gridDim.y + hg;
    is_last = atomicAdd(counter, 1) == p.splits - 1;
    if (is_last) *counter = 0;  // ready for the next launch (and graph replay)
  }
  __syncthreads();
  if (!is_last) return;
  __threadfence();
  const int ns = p.splits;
  constexpr int O4 = HB * HD / 4;
  const int parts = nt / O4 > 0 ? nt / O4 : 1;
  float* accp = reinterpret_cast<float*>(ring);  // [parts][HB * HD] (16-byte aligned: float4 stores)
  float* wgt = accp + parts * (HB * HD);         // [HB][splits]: m_s, then 2^(m_s - M)
  float* rowml = wgt + HB * ns;                  // [HB][2]: M, L
  // Warp hh reduces head hh's (m, l) with lanes over the splits: no serial loop over L2 reads.
  if (warp < HB) {
    const int hh = warp;
    float Ml = -INFINITY, Ll = 0.f;
    for (int sp = lane; sp < ns; sp += 32) {
      const float* ml = p.part_ml + ((int64_t(sp) * rows + row) * H + h0 + hh) * 2;
      const float ms = __ldcg(ml), ls = __ldcg(ml + 1);
      wgt[hh * ns + sp] = ms;
      const float Mn = fmaxf(Ml, ms);
      if (Mn != -INFINITY) {
        Ll = (Ml == -INFINITY ? 0.f : Ll * exp2f(Ml - Mn)) + (ms == -INFINITY ? 0.f : ls * exp2f(ms - Mn));
        Ml = Mn;
      }
    }
    float M = Ml;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) M = fmaxf(M, __shfl_xor_sync(0xffffffffu, M, o));
    const float L = warp_sum(Ml == -INFINITY ? 0.f : Ll * exp2f(Ml - M));
    __syncwarp();
    for (int sp = lane; sp < ns; sp += 32) {
      const float ms = wgt[hh * ns + sp];
      wgt[hh * ns + sp] = ms == -INFINITY ? 0.f : exp2f(ms - M);
    }
    if (lane == 0) {
      rowml[hh * 2] = M;
      rowml[hh * 2 + 1] = L;
    }
  }
  __syncthreads();
  // Partial outputs: float4 per thread, the splits shared out over `parts` threads per float4
  // so that all the loads are in flight at once.
  if (tid < parts * O4) {
    const int o4 = tid % O4, part = tid / O4;
    const int hh = o4 * 4 / HD, d = o4 * 4 % HD;
    float4 a = make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll 4
    for (int sp = part; sp < ns; sp += parts) {
      const float w = wgt[hh * ns + sp];
      const float4 x =
          __ldcg(reinterpret_cast<const float4*>(p.part_o + ((int64_t(sp) * rows + row) * H + h0 + hh) * HD + d));
      a.x = fmaf(w, x.x, a.x);
      a.y = fmaf(w, x.y, a.y);
      a.z = fmaf(w, x.z, a.z);
      a.w = fmaf(w, x.w, a.w);
    }
    *reinterpret_cast<float4*>(accp + part * (HB * HD) + o4 * 4) = a;
  }
  __syncthreads();
  for (int idx = tid; idx < HB * HD; idx += nt) {
    const int hh = idx / HD;
    float A = 0.f;
    for (int part = 0; part < parts; ++part) A += accp[part * (HB * HD) + idx];
    const float gate = gate_factor(rowml[hh * 2], rowml[hh * 2 + 1], p.sinks[h0 + hh]);
    p.out[(int64_t(row) * H + h0) * HD + idx] = from_f32<T>(A * gate);
  }
}

template <typename T, int HD, int HB>
size_t decode_smem_bytes(int warps, int stages) {
  using Sh = DecodeShape<T, HD, HB>;
  const size_t nt = size_t(warps) * 32;
  const size_t ring = size_t(stages) * Sh::SLOTS * nt * 16;
  const size_t merge = size_t(warps + 1) * HB * (HD + 2) * sizeof(float);
  const size_t o4 = HB * HD / 4, parts = nt / o4 > 0 ? nt / o4 : 1;
  const size_t combine = (parts * HB * HD + size_t(HB) * kDecodeMaxSplits + 2 * HB) * sizeof(float);
  return std::max({ring, merge, combine});
}

// Returns false, launching nothing, for QKV when the split would be staged whole and
// qkv_staged is false (the caller runs the input stage as its own kernel instead).
template <typename T, int HD, int HB, typename Keys, bool QKV = false>
bool launch_decode(DecodeParams<T> p, Keys keys, int rows, int64_t max_keys, bool few_rows, bool qkv_staged = true) {
  using Sh = DecodeShape<T, HD, HB>;
  const AttentionTuning t = attention_tuning();
  const auto kernel = decode_attention_kernel<T, HD, HB, Keys, QKV>;
  static int optin = 0;  // dynamic shared memory the kernel may use: the device's opt-in limit
  static std::once_flag once;
  std::call_once(once, [&] {
    int dev = 0;
    FALCON_CUDA_CHECK(cudaGetDevice(&dev));
    FALCON_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    cudaFuncAttributes attr{};
    FALCON_CUDA_CHECK(cudaFuncGetAttributes(&attr, kernel));
    optin -= int(attr.sharedSizeBytes);  // less its static shared memory
    FALCON_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, optin));
  });
  // Defaults, the best of the sweep on the H100 (docs/cuda.md). Few rows (latency-bound): one
  // block of 8 warps per SM; with contiguous keys 8 splits merged in a cluster, paged keys 16
  // splits merged in global memory (each paged block starts with two dependent loads, length
  // and table, and the cluster's cap of 8 splits made it slower). Many rows (bandwidth-bound):
  // 4 warps, no split once the rows fill the SMs. Two stages: more bought nothing.
  const int warps = std::clamp(t.decode_warps > 0 ? t.decode_warps : few_rows ? 8 : 4, 2, kDecodeMaxWarps);
  int stages = std::clamp(t.decode_stages > 0 ? t.decode_stages : 2, 2, kDecodeMaxStages);
  const int cluster =
      t.decode_cluster >= 0 ? t.decode_cluster : few_rows && std::is_same_v<Keys, ContiguousKeys> ? 8 : 0;
  while (stages > 2 && decode_smem_bytes<T, HD, HB>(warps, stages) > size_t(optin)) --stages;
  p.stages = stages;
  const bool pdl = t.decode_pdl && pdl_enabled();
  // Only a latency-bound launch gains from the early prefetch: many rows' keys are far more
  // than the L2 holds, and their blocks are busy streaming anyway.
  p.prefetch = pdl && few_rows;
  p.early_trigger = t.decode_early_trigger;

  // Splits: enough blocks for per_sm per multiprocessor, at least one step of keys each.
  const int64_t groups = int64_t(rows) * (p.H / HB);
  int per_sm = t.decode_blocks_per_sm > 0 ? t.decode_blocks_per_sm : few_rows ? 1 : 2;
  if (t.decode_blocks_per_sm <= 0 && few_rows && pdl && std::is_same_v<Keys, PagedKeys> && t.decode_stage_all != 0) {
    // Staged splits of at most 128 KB at one block per SM: two smaller blocks per SM instead
    // (more blocks copying at once; measured on the H100: 0.3B at 3.1 k keys and 0.6B at 1.2 k
    // gain 2-4 %, 0.6B at 3.1 k keys, 196 KB splits, loses 2 %).
    const int64_t one = std::max<int64_t>(1, int64_t(sm_count()) / groups);
    if ((max_keys + one - 1) / one * (HB + 1) * HD * int64_t(sizeof(T)) <= (int64_t(128) << 10)) per_sm = 2;
  }
  int64_t splits = int64_t(sm_count()) * per_sm / groups;
  const int64_t step = int64_t(warps) * 4 * Sh::U;  // keys per step of a block
  splits = std::min<int64_t>(splits, (max_keys + step - 1) / step);
  splits = std::clamp<int64_t>(splits, 1, kDecodeMaxSplits);
  // Latency-bound paged rows: the whole split staged before the wait, where it fits in shared
  // memory (every chunk of the table's capacity, so the grid stays valid at any length): the
  // stages that takes for `sp` splits, or 0.
  const auto all_stages = [&](int64_t sp) -> int {
    if (!(pdl && few_rows && std::is_same_v<Keys, PagedKeys> && t.decode_stage_all != 0)) return 0;
    const int64_t chunk_max = (max_keys + sp - 1) / sp;
    const int all = int(std::max<int64_t>(1, (chunk_max + step - 1) / step));
    return all * Sh::U <= 32 && decode_smem_bytes<T, HD, HB>(warps, all) <= size_t(optin) ? all : 0;
  };
  // Cluster merge: at most decode_cluster splits, if clusters of that size fit on the device.
  p.cluster = false;
  if (cluster > 1 && splits > 1 && compute_capability() >= 90) {
    const int cs = int(std::min<int64_t>(splits, std::min(cluster, 16)));
    const int staged = all_stages(cs), st = staged > 0 ? staged : stages;
    static std::atomic<int> fits[kDecodeMaxWarps + 1][33][17];  // 0 unknown, 1 no, 2 yes
    int f = fits[warps][st][cs].load(std::memory_order_relaxed);
    if (f == 0) {
      if (cs > 8) FALCON_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1));
      cudaLaunchConfig_t cfg{};
      cfg.gridDim = dim3(unsigned(cs), unsigned(p.H / HB), unsigned(rows));
      cfg.blockDim = dim3(unsigned(warps * 32));
      cfg.dynamicSmemBytes = decode_smem_bytes<T, HD, HB>(warps, st);
      cudaLaunchAttribute attr{};
      attr.id = cudaLaunchAttributeClusterDimension;
      attr.val.clusterDim.x = unsigned(cs);
      attr.val.clusterDim.y = attr.val.clusterDim.z = 1;
      cfg.attrs = &attr;
      cfg.numAttrs = 1;
      int clusters = 0;
      const cudaError_t e = cudaOccupancyMaxActiveClusters(&clusters, kernel, &cfg);
      if (e != cudaSuccess) cudaGetLastError();  // not supported: the global merge
      f = e == cudaSuccess && clusters > 0 ? 2 : 1;
      fits[warps][st][cs].store(f, std::memory_order_relaxed);
    }
    if (f == 2) {
      splits = cs;
      p.cluster = true;
    }
  }
  p.splits = int(splits);
  const int all = all_stages(splits);
  p.stage_all = all > 0;
  if (QKV && p.stage_all && !qkv_staged) return false;
  if (p.stage_all) {
    p.prefetch = false;
    p.stages = all;
  }
  const size_t smem = decode_smem_bytes<T, HD, HB>(warps, p.stages);
  if (splits > 1 && !p.cluster) {
    const size_t n = size_t(splits) * size_t(rows) * size_t(p.H);
    auto* buf = static_cast<float*>(scratch(Scratch::AttentionPartials, n * size_t(HD + 2) * sizeof(float)));
    p.part_o = buf;
    p.part_ml = buf + n * size_t(HD);
    p.done = static_cast<int*>(scratch(Scratch::AttentionCounters, size_t(groups) * sizeof(int)));
  }
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = dim3(unsigned(splits), unsigned(p.H / HB), unsigned(rows));
  cfg.blockDim = dim3(unsigned(warps * 32));
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream();
  cudaLaunchAttribute attrs[2]{};
  if (p.cluster) {
    attrs[cfg.numAttrs].id = cudaLaunchAttributeClusterDimension;
    attrs[cfg.numAttrs].val.clusterDim.x = unsigned(splits);
    attrs[cfg.numAttrs].val.clusterDim.y = attrs[cfg.numAttrs].val.clusterDim.z = 1;
    ++cfg.numAttrs;
  }
  if (pdl) {
    // Programmatic dependent launch: the blocks may start while the previous kernel finishes;
    // they wait for it (griddepcontrol.wait) before reading anything.
    attrs[cfg.numAttrs].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attrs[cfg.numAttrs].val.programmaticStreamSerializationAllowed = 1;
    ++cfg.numAttrs;
  }
  cfg.attrs = attrs;
  FALCON_CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel, p, keys));
  return true;
}

// decode_attention_kernel over `rows` rows of p.H heads, head_dim hd (64 or 128): pairs of
// query heads sharing a kv head per block (V read once) when the group is even, the few-rows
// settings when the (row, head group) pairs do not fill the SMs. Returns launch_decode's answer.
template <typename T, typename Keys, bool QKV = false>
bool launch_decode_rows(const DecodeParams<T>& p, Keys keys, int rows, int hd, int64_t max_keys,
                        bool qkv_staged = true) {
  const int G = p.H / p.K;
  const bool few_rows = int64_t(rows) * (G % 2 == 0 ? p.H / 2 : p.H) < sm_count();
  const bool pair = G % 2 == 0 && attention_tuning().decode_pairs;
  if (hd == 128) {
    return pair ? launch_decode<T, 128, 2, Keys, QKV>(p, keys, rows, max_keys, few_rows, qkv_staged)
                : launch_decode<T, 128, 1, Keys, QKV>(p, keys, rows, max_keys, few_rows, qkv_staged);
  }
  return pair ? launch_decode<T, 64, 2, Keys, QKV>(p, keys, rows, max_keys, few_rows, qkv_staged)
              : launch_decode<T, 64, 1, Keys, QKV>(p, keys, rows, max_keys, few_rows, qkv_staged);
}

// One query row per sequence through decode_attention_kernel when the shape allows it (head_dim
// 64 or 128, 16-byte aligned q, k, v); false: the caller uses the general split kernel.
template <typename T, typename Keys>
bool run_decode_attention(const SplitParams<T>& sp, Keys keys, int64_t max_keys) {
  if (!attention_tuning().decode_kernel) return false;
  if ((sp.hd != 64 && sp.hd != 128) || sp.K <= 0 || sp.H % sp.K != 0 || sp.rows > 65535) return false;
  if (!aligned_to(sp.q, 16) || !aligned_to(sp.k, 16) || !aligned_to(sp.v, 16)) return false;
  DecodeParams<T> p{};
  p.q = sp.q;
  p.k = sp.k;
  p.v = sp.v;
  p.out = sp.out;
  p.sinks = sp.sinks;
  p.H = sp.H;
  p.K = sp.K;
  p.max_keys = int(max_keys);
  p.scale_log2 = sp.scale_log2;
  launch_decode_rows(p, keys, sp.rows, sp.hd, max_keys);
  return true;
}

// Runs the split kernel: picks the per-lane vector width from head_dim and the alignment of
// the tensors, and the scratch for the partials. rows_per_block is 1, 2, 4 or 8.
template <typename T, typename Keys>
void run_split_attention(SplitParams<T> p, Keys keys, int rows_per_block, int64_t max_keys) {
  if (rows_per_block == 1 && run_decode_attention(p, keys, max_keys)) return;
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
