// Flash-attention prefill for BF16 on tensor cores (mma.sync m16n8k16, f32 accumulators), for
// head_dim 64 and 128. Included by attention_cuda.cu only.
//
// A block owns BM = 16 * MT * NW query rows of one head; each warp owns 16 * MT of them. K and V
// tiles of BN keys stream through shared memory, double-buffered with cp.async so the next tile
// loads while this one is multiplied. Per tile: S = Q K^T in registers, the hybrid mask (a
// per-row prefix, see last_key), an online softmax in the log2 domain, P rounded to bf16 and
// O += P V. Shared-memory rows are XOR-swizzled in 16-byte chunks so ldmatrix reads of 8 rows
// hit 8 different bank groups. Never more than a tile of scores exists.
//
// The visible keys of a query form a prefix [0, last(p)], and last() grows with p, so a block
// needs tiles up to last(its last row) and every tile up to last(its first row) is fully
// visible: only the tiles between need the mask, and nothing past them is read (masked tiles
// are skipped by construction).
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

namespace falcon::ops::cuda::flash {

struct Params {
  const __nv_bfloat16* q;  // [S, H, HD]
  const __nv_bfloat16* k;  // [T, H, HD]
  const __nv_bfloat16* v;  // [T, K, HD]
  __nv_bfloat16* out;      // [S, H, HD]
  const float* sinks;      // [H]
  int S, H, K, T;
  int64_t q_offset, image_begin, image_end;
  float scale_log2;
};

__device__ __forceinline__ int64_t last_key(const Params& p, int64_t pos) {
  if (p.image_end > p.image_begin && pos >= p.image_begin && pos < p.image_end) {
    return pos > p.image_end - 1 ? pos : p.image_end - 1;
  }
  return pos;
}

__device__ __forceinline__ uint32_t smem_addr(const void* ptr) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(ptr));
}

// 16 bytes global -> shared; src_bytes = 0 writes zeros (rows past the end).
__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t addr, uint32_t& r0, uint32_t& r1, uint32_t& r2, uint32_t& r3) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
               : "r"(addr));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t addr, uint32_t& r0, uint32_t& r1, uint32_t& r2,
                                                  uint32_t& r3) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
               : "r"(addr));
}

// d += a (16x16, row) * b (16x8, col), bf16 in, f32 accumulate.
__device__ __forceinline__ void mma_bf16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// Element offset of 16-byte chunk `chunk` of row `row` in a swizzled tile of CH chunks a row.
template <int CH>
__device__ __forceinline__ int swz(int row, int chunk) {
  return (row * CH + (chunk ^ (row & 7))) * 8;
}

// Copies `rows` rows of HD bf16 (global row stride `stride` elements) into a swizzled tile;
// rows at or past `valid` are zero-filled.
template <int HD, int ROWS, int THREADS>
__device__ __forceinline__ void load_tile(__nv_bfloat16* tile, const __nv_bfloat16* src, int64_t stride, int valid) {
  constexpr int CH = HD / 8;
#pragma unroll
  for (int c = threadIdx.x; c < ROWS * CH; c += THREADS) {
    const int r = c / CH, ch = c % CH;
    const bool ok = r < valid;
    const __nv_bfloat16* g = ok ? src + int64_t(r) * stride + ch * 8 : src;
    cp_async16(smem_addr(tile + swz<CH>(r, ch)), g, ok ? 16 : 0);
  }
}

// HD: head_dim; NW: warps per block; MT: 16-row m-tiles per warp (1 keeps Q's fragments in
// registers; 2 reloads them from shared memory but reuses every K/V fragment for 32 rows, halving
// the ldmatrix traffic per FLOP, which bounds this kernel); BN: keys per tile.
template <int HD, int NW, int MT, int BN>
__global__ void __launch_bounds__(NW * 32, 1) flash_prefill_kernel(Params p) {
  constexpr int BM = 16 * MT * NW, THREADS = NW * 32, CH = HD / 8;
  constexpr int KSTEPS = HD / 16;  // k-steps of Q K^T
  constexpr int NTILES = BN / 8;   // n-tiles of S
  constexpr int DTILES = HD / 8;   // n-tiles of O
  constexpr bool kQInRegs = MT == 1;
  extern __shared__ __align__(128) unsigned char smem_raw[];
  __nv_bfloat16* sQ = reinterpret_cast<__nv_bfloat16*>(smem_raw);
  __nv_bfloat16* sK = sQ + BM * HD;       // [2][BN * HD]
  __nv_bfloat16* sV = sK + 2 * BN * HD;   // [2][BN * HD]

  // Heaviest blocks (last rows, most keys) first.
  const int mb = int(gridDim.x) - 1 - int(blockIdx.x);
  const int h = blockIdx.y;
  const int kvh = h / (p.H / p.K);
  const int q0 = mb * BM;
  const int rows_here = p.S - q0 < BM ? p.S - q0 : BM;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane / 4, t4 = lane % 4;

  const int64_t kmax = last_key(p, p.q_offset + q0 + rows_here - 1);
  const int64_t full_until = last_key(p, p.q_offset + q0);  // tiles ending at or before this are unmasked
  const int n_tiles = int(kmax / BN) + 1;

  const int64_t k_stride = int64_t(p.H) * HD, v_stride = int64_t(p.K) * HD;
  const __nv_bfloat16* q_src = p.q + (int64_t(q0) * p.H + h) * HD;
  const __nv_bfloat16* k_src = p.k + int64_t(h) * HD;
  const __nv_bfloat16* v_src = p.v + int64_t(kvh) * HD;

  load_tile<HD, BM, THREADS>(sQ, q_src, k_stride, rows_here);
  load_tile<HD, BN, THREADS>(sK, k_src, k_stride, p.T < BN ? p.T : BN);
  load_tile<HD, BN, THREADS>(sV, v_src, v_stride, p.T < BN ? p.T : BN);
  cp_async_commit();

  // This thread's rows: g and g + 8 of each of the warp's m-tiles (relative to the chunk).
  const int row0 = q0 + warp * 16 * MT + g;
  int64_t last[MT][2];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
    last[mt][0] = last_key(p, p.q_offset + row0 + 16 * mt);
    last[mt][1] = last_key(p, p.q_offset + row0 + 16 * mt + 8);
  }

  uint32_t qa[kQInRegs ? KSTEPS : 1][4];
  float o[MT][DTILES][4];
  float m[MT][2], l[MT][2];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
    for (int i = 0; i < DTILES; ++i) o[mt][i][0] = o[mt][i][1] = o[mt][i][2] = o[mt][i][3] = 0.f;
    m[mt][0] = m[mt][1] = -INFINITY;
    l[mt][0] = l[mt][1] = 0.f;
  }
  // ldmatrix address of the A fragment of m-tile mt, k-step kk.
  const auto q_frag_addr = [&](int mt, int kk) {
    const int r = warp * 16 * MT + 16 * mt + (lane % 8) + 8 * ((lane / 8) % 2);
    return smem_addr(sQ + swz<CH>(r, 2 * kk + lane / 16));
  };

  for (int t = 0; t < n_tiles; ++t) {
    const int buf = t & 1;
    if (t + 1 < n_tiles) {
      const int64_t n1 = int64_t(t + 1) * BN;
      const int valid = int(p.T - n1 < BN ? p.T - n1 : BN);
      load_tile<HD, BN, THREADS>(sK + (buf ^ 1) * BN * HD, k_src + n1 * k_stride, k_stride, valid);
      load_tile<HD, BN, THREADS>(sV + (buf ^ 1) * BN * HD, v_src + n1 * v_stride, v_stride, valid);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();

    if constexpr (kQInRegs) {
      if (t == 0) {
#pragma unroll
        for (int kk = 0; kk < KSTEPS; ++kk) ldmatrix_x4(q_frag_addr(0, kk), qa[kk][0], qa[kk][1], qa[kk][2], qa[kk][3]);
      }
    }

    // S = Q K^T for this warp's rows and the tile's BN keys; each K fragment serves all m-tiles.
    const __nv_bfloat16* tK = sK + buf * BN * HD;
    float s[MT][NTILES][4];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
      for (int j = 0; j < NTILES; ++j) s[mt][j][0] = s[mt][j][1] = s[mt][j][2] = s[mt][j][3] = 0.f;
    }
#pragma unroll
    for (int kk = 0; kk < KSTEPS; ++kk) {
      uint32_t a[MT][4];
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        if constexpr (kQInRegs) {
#pragma unroll
          for (int i = 0; i < 4; ++i) a[mt][i] = qa[kk][i];
        } else {
          ldmatrix_x4(q_frag_addr(mt, kk), a[mt][0], a[mt][1], a[mt][2], a[mt][3]);
        }
      }
#pragma unroll
      for (int j2 = 0; j2 < NTILES / 2; ++j2) {
        const int key = 16 * j2 + (lane % 8) + 8 * (lane / 16);
        const int ch = 2 * kk + (lane / 8) % 2;
        uint32_t b0, b1, b2, b3;
        ldmatrix_x4(smem_addr(tK + swz<CH>(key, ch)), b0, b1, b2, b3);
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          mma_bf16(s[mt][2 * j2], a[mt], b0, b1);
          mma_bf16(s[mt][2 * j2 + 1], a[mt], b2, b3);
        }
      }
    }

    const int64_t n0 = int64_t(t) * BN;
    if (n0 + BN - 1 > full_until) {
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
        for (int j = 0; j < NTILES; ++j) {
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const int64_t key = n0 + 8 * j + 2 * t4 + e;
            if (key > last[mt][0]) s[mt][j][e] = -INFINITY;
            if (key > last[mt][1]) s[mt][j][2 + e] = -INFINITY;
          }
        }
      }
    }

    // Online softmax; a quad of 4 threads shares each row (half = 0: row g, 1: row g + 8).
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        float mx = -INFINITY;
#pragma unroll
        for (int j = 0; j < NTILES; ++j) mx = fmaxf(mx, fmaxf(s[mt][j][2 * half], s[mt][j][2 * half + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        const float mnew = fmaxf(m[mt][half], mx * p.scale_log2);
        // A row with nothing visible yet keeps max -inf; subtracting 0 keeps exp2 at 0, not NaN.
        const float muse = mnew == -INFINITY ? 0.f : mnew;
        const float alpha = fast_exp2(m[mt][half] - muse);
        m[mt][half] = mnew;
        float sum = 0.f;
#pragma unroll
        for (int j = 0; j < NTILES; ++j) {
          s[mt][j][2 * half] = fast_exp2(fmaf(s[mt][j][2 * half], p.scale_log2, -muse));
          s[mt][j][2 * half + 1] = fast_exp2(fmaf(s[mt][j][2 * half + 1], p.scale_log2, -muse));
          sum += s[mt][j][2 * half] + s[mt][j][2 * half + 1];
        }
        l[mt][half] = l[mt][half] * alpha + sum;
#pragma unroll
        for (int i = 0; i < DTILES; ++i) {
          o[mt][i][2 * half] *= alpha;
          o[mt][i][2 * half + 1] *= alpha;
        }
      }
    }

    // O += P V: the S accumulators of n-tiles 2kk, 2kk+1 are exactly the A fragment of k-step kk;
    // each V fragment serves all m-tiles.
    const __nv_bfloat16* tV = sV + buf * BN * HD;
#pragma unroll
    for (int kk = 0; kk < BN / 16; ++kk) {
      uint32_t pa[MT][4];
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        pa[mt][0] = pack_bf16(s[mt][2 * kk][0], s[mt][2 * kk][1]);
        pa[mt][1] = pack_bf16(s[mt][2 * kk][2], s[mt][2 * kk][3]);
        pa[mt][2] = pack_bf16(s[mt][2 * kk + 1][0], s[mt][2 * kk + 1][1]);
        pa[mt][3] = pack_bf16(s[mt][2 * kk + 1][2], s[mt][2 * kk + 1][3]);
      }
#pragma unroll
      for (int d2 = 0; d2 < DTILES / 2; ++d2) {
        const int key = 16 * kk + (lane % 8) + 8 * ((lane / 8) % 2);
        const int ch = 2 * d2 + lane / 16;
        uint32_t b0, b1, b2, b3;
        ldmatrix_x4_trans(smem_addr(tV + swz<CH>(key, ch)), b0, b1, b2, b3);
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          mma_bf16(o[mt][2 * d2], pa[mt], b0, b1);
          mma_bf16(o[mt][2 * d2 + 1], pa[mt], b2, b3);
        }
      }
    }
    __syncthreads();  // everyone is done with this buffer before it is refilled
  }

  const float sink = p.sinks[h];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      // Row sums are split over the quad; the sink gate needs the full lse.
      float sum = l[mt][half];
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      sum += __shfl_xor_sync(0xffffffffu, sum, 2);
      float f = 0.f;
      if (sum > 0.f) {
        const float lse = (m[mt][half] + log2f(sum)) * 0.6931471805599453f;
        f = 1.0f / (sum * (1.0f + expf(sink - lse)));
      }
      const int row = row0 + 16 * mt + 8 * half;
      if (row < p.S) {
        __nv_bfloat16* dst = p.out + (int64_t(row) * p.H + h) * HD + 2 * t4;
#pragma unroll
        for (int i = 0; i < DTILES; ++i) {
          *reinterpret_cast<__nv_bfloat162*>(dst + 8 * i) =
              __floats2bfloat162_rn(o[mt][i][2 * half] * f, o[mt][i][2 * half + 1] * f);
        }
      }
    }
  }
}

template <int HD, int NW, int MT, int BN>
constexpr size_t smem_bytes() {
  return size_t(16 * MT * NW + 4 * BN) * HD * sizeof(__nv_bfloat16);
}

}  // namespace falcon::ops::cuda::flash
