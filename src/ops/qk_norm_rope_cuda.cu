// The fused attention input stage on CUDA: a warp per head task (normalise + rotate a q head,
// normalise + rotate an expanded k head, or copy a v head), each token's tasks over a few blocks;
// keys and values go to their rows, or to their slots of a paged pool.
#include <string>

#include "ops/cuda_common.cuh"
#include "ops/qk_norm_rope.h"
#include "ops/rope_angles.cuh"

namespace falcon::ops::cuda {

namespace {

constexpr int kWarps = 8;

struct Args {
  int H, K, hd;
  float eps;
  // Set: the kv row is the newest position's slot through the block table (NewestSlots).
  const int32_t* table;
  const int32_t* lens;
  int max_blocks, block_size;
};

// One head in one pass: lane l holds elements [l*EPL, (l+1)*EPL) in registers (EPL = hd/32, even),
// so the head is read once, normalised, rotated pair by pair and written once.
template <typename T, int EPL>
__device__ void norm_rotate_head_regs(const T* src, T* dst, int hd, float eps, const float* cos_t,
                                      const float* sin_t, const float* cos_g, const float* sin_g, bool spatial) {
  const int lane = threadIdx.x % 32;
  const int quarter = hd / 4;
  float v[EPL];
  load_f32<T, EPL>(src + lane * EPL, v);
  float ss = 0.f;
#pragma unroll
  for (int i = 0; i < EPL; ++i) ss += v[i] * v[i];
  ss = warp_sum(ss);
  const float inv = 1.0f / sqrtf(ss / float(hd) + eps);
#pragma unroll
  for (int i = 0; i < EPL / 2; ++i) {
    const int p = lane * (EPL / 2) + i;
    const float a = v[2 * i] * inv, b = v[2 * i + 1] * inv;
    float c = 1.f, sn = 0.f;
    if (p < quarter) {
      c = cos_t[p];
      sn = sin_t[p];
    } else if (spatial) {
      c = cos_g[p - quarter];
      sn = sin_g[p - quarter];
    }
    if (p < quarter || spatial) {
      v[2 * i] = a * c - b * sn;
      v[2 * i + 1] = a * sn + b * c;
    } else {
      v[2 * i] = a;
      v[2 * i + 1] = b;
    }
  }
  store_f32<T, EPL>(dst + lane * EPL, v);
}

template <typename T>
__device__ void norm_rotate_head(const T* src, T* dst, int hd, float eps, const float* cos_t, const float* sin_t,
                                 const float* cos_g, const float* sin_g, bool spatial) {
  const int lane = threadIdx.x % 32;
  const int pairs = hd / 2, quarter = hd / 4;
  float ss = 0.f;
  for (int p = lane; p < pairs; p += 32) {
    float v[2];
    load_f32<T, 2>(src + 2 * p, v);
    ss += v[0] * v[0] + v[1] * v[1];
  }
  ss = warp_sum(ss);
  const float inv = 1.0f / sqrtf(ss / float(hd) + eps);
  for (int p = lane; p < pairs; p += 32) {
    float v[2];
    load_f32<T, 2>(src + 2 * p, v);
    const float a = v[0] * inv, b = v[1] * inv;
    if (p < quarter) {
      v[0] = a * cos_t[p] - b * sin_t[p];
      v[1] = a * sin_t[p] + b * cos_t[p];
    } else if (spatial) {
      const int f = p - quarter;
      v[0] = a * cos_g[f] - b * sin_g[f];
      v[1] = a * sin_g[f] + b * cos_g[f];
    } else {
      v[0] = a;
      v[1] = b;
    }
    store_f32<T, 2>(dst + 2 * p, v);
  }
}

// EPL = hd / 32 for the one-pass path, 0 for the generic two-pass loop (any even hd).
// Grid (S, ceil((2H + K) / kWarps)): a token's head tasks are spread over several blocks, so a
// decode step's single row runs its 40 tasks side by side rather than five rounds of one block.
// Tasks are ordered q0, k0, q1, k1, ..., v0, v1, ...: a block's q and k heads share their
// spatial angles, so it computes them for its own kWarps / 2 heads only. (Measured slower at
// S = 3,095 on the H100: four tokens per block with every load issued before any reduction,
// 47.8 vs 40.7 us; the head's load issued before the angles, 43.8.)
template <typename T, int EPL>
__global__ void qk_norm_rope_kernel(const T* qkv, const int32_t* pos_t, const float* pos_hw, const float* golden,
                                    const int32_t* slots, int64_t kv_rows, RopeInvFreq inv_freq, Args a, T* q, T* k,
                                    T* v) {
  pdl_allow_dependents();
  extern __shared__ float tables[];
  const int s = blockIdx.x;
  const int H = a.H, K = a.K, hd = a.hd, quarter = hd / 4, group = H / K;
  constexpr int kHeads = kWarps / 2;  // query heads (and their expanded k heads) per block
  const int t0 = int(blockIdx.y) * kWarps, h_lo = t0 / 2;
  float* cos_t = tables;
  float* sin_t = cos_t + quarter;
  float* cos_g = sin_t + quarter;  // [kHeads, quarter], heads h_lo ..
  float* sin_g = cos_g + kHeads * quarter;

  // Inputs uploaded by the host (positions, slots) do not depend on the kernel before.
  const float ph = pos_hw[2 * s], pw = pos_hw[2 * s + 1];
  const bool spatial = ph != 0.f || pw != 0.f;
  const float pt = float(pos_t[s]);
  int64_t kv_row = slots ? int64_t(slots[s]) : int64_t(s);
  if (a.table) {
    const int64_t n = a.lens[s];
    kv_row = -1;
    if (n > 0 && n <= int64_t(a.max_blocks) * a.block_size) {
      const int64_t blk = a.table[int64_t(s) * a.max_blocks + (n - 1) / a.block_size];
      if (blk >= 0) kv_row = blk * a.block_size + (n - 1) % a.block_size;  // past the pool: kv_on below
    }
  }
  const bool kv_on = kv_row >= 0 && kv_row < kv_rows;  // a negative slot: a padding row
  if (t0 < 2 * H) {
    for (int i = threadIdx.x; i < quarter; i += blockDim.x) {
      rope_cos_sin<T>(rope_temporal_angle(pt, inv_freq.f[i]), &cos_t[i], &sin_t[i]);
    }
    if (spatial) {
      const int n = (H - h_lo < kHeads ? H - h_lo : kHeads) * quarter;
      for (int i = threadIdx.x; i < n; i += blockDim.x) {
        rope_cos_sin<T>(rope_spatial_angle(ph, pw, golden + 2 * (int64_t(h_lo) * quarter + i)), &cos_g[i], &sin_g[i]);
      }
    }
    __syncthreads();
  }
  pdl_wait();  // qkv comes from the product before (cuda_common.cuh: PDL)
  const auto head = [&](const T* src, T* dst, int gh) {
    const float* cg = cos_g + (gh - h_lo) * quarter;
    const float* sg = sin_g + (gh - h_lo) * quarter;
    if constexpr (EPL > 0) {
      norm_rotate_head_regs<T, EPL>(src, dst, hd, a.eps, cos_t, sin_t, cg, sg, spatial);
    } else {
      norm_rotate_head(src, dst, hd, a.eps, cos_t, sin_t, cg, sg, spatial);
    }
  };

  const T* in = qkv + int64_t(s) * (H + 2 * K) * hd;
  const int t = t0 + int(threadIdx.x) / 32;
  if (t < 2 * H) {
    const int h = t / 2;
    if (t % 2 == 0) {
      head(in + h * hd, q + (int64_t(s) * H + h) * hd, h);
    } else if (kv_on) {
      // Expanded k head: normalise kv head h / group, rotate with head h's golden angles.
      head(in + (H + h / group) * hd, k + (kv_row * H + h) * hd, h);
    }
  } else if (t < 2 * H + K && kv_on) {
    const int kh = t - 2 * H;
    const T* src = in + (H + K + kh) * hd;
    T* dst = v + (kv_row * K + kh) * hd;
    for (int c = threadIdx.x % 32; c < hd; c += 32) dst[c] = src[c];
  }
}

}  // namespace

void qk_norm_rope(const Tensor& qkv, const Tensor& pos_t, const Tensor& pos_hw, const Tensor& golden, float theta,
                  float eps, Tensor& q, Tensor& k, Tensor& v, const Tensor* slots, const NewestSlots* newest) {
  const int64_t S = q.dim(0), H = q.dim(1), hd = q.dim(2), K = v.dim(1);
  if (S == 0) return;
  if (hd / 4 > kRopeMaxQuarter) throw Unsupported("qk_norm_rope (cuda): head_dim above 256");
  const RopeInvFreq inv = rope_inv_freqs(theta, int(hd));
  Args args{int(H), int(K), int(hd), eps, nullptr, nullptr, 0, 1};
  if (newest) {
    args.table = newest->block_table->data<int32_t>();
    args.lens = newest->lens->data<int32_t>();
    args.max_blocks = int(newest->block_table->dim(1));
    args.block_size = int(newest->block_size);
  }
  const size_t smem = size_t(2 * (hd / 4) * (1 + kWarps / 2)) * sizeof(float);
  const dim3 grid(unsigned(S), unsigned((2 * H + K + kWarps - 1) / kWarps));
  const int32_t* slot_ptr = slots ? slots->data<int32_t>() : nullptr;
  dispatch_float(qkv.dtype(), "qk_norm_rope", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const auto launch = [&](auto kernel) {
      launch_dependent(kernel, grid, dim3(kWarps * 32), smem, qkv.data<T>(), pos_t.data<int32_t>(),
                       pos_hw.data<float>(), golden.data<float>(), slot_ptr, k.dim(0), inv, args, q.data<T>(),
                       k.data<T>(), v.data<T>());
    };
    // The one-pass path needs each lane's EPL elements aligned for one vector load.
    const bool al = aligned_to(qkv.raw(), 16) && aligned_to(q.raw(), 16) && aligned_to(k.raw(), 16);
    if (hd == 128 && al) {
      launch(qk_norm_rope_kernel<T, 4>);
    } else if (hd == 64 && al) {
      launch(qk_norm_rope_kernel<T, 2>);
    } else {
      launch(qk_norm_rope_kernel<T, 0>);
    }
    FALCON_CUDA_CHECK_LAUNCH("qk_norm_rope_kernel");
  });
}

}  // namespace falcon::ops::cuda
