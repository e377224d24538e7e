// Flash-attention prefill for BF16 with Hopper's warpgroup MMA (wgmma, sm_90a), head_dim 64 and
// 128. Included by attention_cuda.cu only; same contract and mask logic as attention_flash.cuh.
//
// A warpgroup (4 warps) owns 64 query rows; a block has NWG warpgroups sharing each K/V tile.
// Q's fragments stay in registers (A operand); K and V tiles (64 keys) are B operands read by
// the tensor cores straight from shared memory through matrix descriptors, so a tile is read
// once per warpgroup instead of once per warp as with mma.sync + ldmatrix. Tiles use the
// canonical 128-byte swizzle: rows of 64 bf16 (128 B), 16-byte chunk c of row r stored at chunk
// c ^ (r % 8), head dims past 64 in a second region; 1024-byte aligned.
//   S = Q K^T: K tile is K-major for B (dims contiguous): SBO = 1024 (8 rows), LBO unused.
//   O += P V: V tile [key][dim] is MN-major for B (transposed): SBO = 1024 (8 keys), LBO = the
//   region stride (64 * 128 B) between dims 0-63 and 64-127.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

#include "ops/attention_flash.cuh"

namespace falcon::ops::cuda::flash {

// d[32] (+)= A (64x16, registers) * B (16x64, shared memory via descriptor).
__device__ __forceinline__ void wgmma_m64n64k16_rs(float (&d)[32], const uint32_t (&a)[4], uint64_t desc_b, int accumulate) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 "
      "{"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31"
      "}, {%32, %33, %34, %35}, %36, p, 1, 1, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(accumulate));
#else
  __trap();  // built without sm_90a: the caller never selects this path
#endif
}

// d[32] (+)= A (64x16, registers) * B (16x64, shared memory via descriptor), B transposed (MN-major).
__device__ __forceinline__ void wgmma_m64n64k16_rs_tb(float (&d)[32], const uint32_t (&a)[4], uint64_t desc_b, int accumulate) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 "
      "{"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31"
      "}, {%32, %33, %34, %35}, %36, p, 1, 1, 1;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(accumulate));
#else
  __trap();  // built without sm_90a: the caller never selects this path
#endif
}

// d[64] (+)= A (64x16, registers) * B (16x128, shared memory via descriptor), B transposed (MN-major).
__device__ __forceinline__ void wgmma_m64n128k16_rs_tb(float (&d)[64], const uint32_t (&a)[4], uint64_t desc_b, int accumulate) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 "
      "{"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
      "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
      "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
      "}, {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
        "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
        "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
        "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
        "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(accumulate));
#else
  __trap();  // built without sm_90a: the caller never selects this path
#endif
}

__device__ __forceinline__ void wgmma_fence() {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void wgmma_commit() {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void wgmma_wait_all() {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
#endif
}
// Keeps the compiler from moving reads of accumulators above the wait (the wgmma is async).
template <int N>
__device__ __forceinline__ void fence_operands(float (&r)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(r[i])::"memory");
}
// cp.async writes are generic-proxy stores; the tensor cores read through the async proxy.
__device__ __forceinline__ void fence_proxy_async() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}

// Shared-memory matrix descriptor, 128-byte swizzle.
__device__ __forceinline__ uint64_t smem_desc(uint32_t addr, uint32_t lbo, uint32_t sbo) {
  return uint64_t((addr & 0x3FFFF) >> 4) | (uint64_t((lbo >> 4) & 0x3FFF) << 16) |
         (uint64_t((sbo >> 4) & 0x3FFF) << 32) | (uint64_t(1) << 62);
}

// Element offset of 16-byte chunk c of row r in a 128B-swizzled tile of ROWS rows.
template <int ROWS>
__device__ __forceinline__ int sw128(int r, int c) {
  return ((c >> 3) * ROWS * 128 + r * 128 + (((c & 7) ^ (r & 7)) << 4)) >> 1;
}

template <int HD, int ROWS, int THREADS>
__device__ __forceinline__ void load_tile_sw128(__nv_bfloat16* tile, const __nv_bfloat16* src, int64_t stride,
                                                int valid) {
  constexpr int CH = HD / 8;
#pragma unroll
  for (int c = threadIdx.x; c < ROWS * CH; c += THREADS) {
    const int r = c / CH, ch = c % CH;
    const bool ok = r < valid;
    const __nv_bfloat16* g = ok ? src + int64_t(r) * stride + ch * 8 : src;
    cp_async16(smem_addr(tile + sw128<ROWS>(r, ch)), g, ok ? 16 : 0);
  }
}

// LEAN (one warpgroup): Q lives in the second K buffer until its fragments are in registers,
// so a block needs 65 KB instead of 81 and three blocks share a multiprocessor (registers capped
// at 170 by the launch bounds); one block's softmax then overlaps another's tensor-core work.
template <int HD, int NWG, bool LEAN>
constexpr size_t wgmma_smem_bytes() {
  // Q tile (unless LEAN), two K and two V buffers of 64 keys, 1 KB to align the base to 1024 B.
  return size_t((LEAN ? 0 : 64 * NWG) + 4 * 64) * HD * sizeof(__nv_bfloat16) + 1024;
}

template <int HD, int NWG, bool LEAN>
__global__ void __launch_bounds__(NWG * 128, LEAN ? 3 : 1) flash_wgmma_kernel(Params p) {
  static_assert(!LEAN || NWG == 1, "the lean layout holds one warpgroup's Q tile");
  constexpr int BM = 64 * NWG, BN = 64, THREADS = NWG * 128;
  constexpr int KSTEPS = HD / 16;
  constexpr int DREGS = HD / 2;  // O accumulator registers per thread (m64 x HD over 128 threads)
  extern __shared__ unsigned char smem_raw[];
  const uint32_t raw_addr = smem_addr(smem_raw);
  unsigned char* base = smem_raw + ((1024 - (raw_addr & 1023)) & 1023);
  __nv_bfloat16* sK = reinterpret_cast<__nv_bfloat16*>(base) + (LEAN ? 0 : BM * HD);  // [2][BN * HD]
  __nv_bfloat16* sV = sK + 2 * BN * HD;                                                  // [2][BN * HD]
  __nv_bfloat16* sQ = LEAN ? sK + BN * HD : reinterpret_cast<__nv_bfloat16*>(base);

  const int mb = int(gridDim.x) - 1 - int(blockIdx.x);  // heaviest blocks first
  const int h = blockIdx.y;
  const int kvh = h / (p.H / p.K);
  const int q0 = mb * BM;
  const int rows_here = p.S - q0 < BM ? p.S - q0 : BM;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane / 4, t4 = lane % 4;

  const int64_t kmax = last_key(p, p.q_offset + q0 + rows_here - 1);
  const int64_t full_until = last_key(p, p.q_offset + q0);
  const int n_tiles = int(kmax / BN) + 1;

  const int64_t k_stride = int64_t(p.H) * HD, v_stride = int64_t(p.K) * HD;
  const __nv_bfloat16* q_src = p.q + (int64_t(q0) * p.H + h) * HD;
  const __nv_bfloat16* k_src = p.k + int64_t(h) * HD;
  const __nv_bfloat16* v_src = p.v + int64_t(kvh) * HD;

  load_tile_sw128<HD, BM, THREADS>(sQ, q_src, k_stride, rows_here);
  load_tile_sw128<HD, BN, THREADS>(sK, k_src, k_stride, p.T < BN ? p.T : BN);
  load_tile_sw128<HD, BN, THREADS>(sV, v_src, v_stride, p.T < BN ? p.T : BN);
  cp_async_commit();

  const int row0 = q0 + warp * 16 + g;  // warp w of the block owns rows 16w .. 16w + 15
  const int64_t lastA = last_key(p, p.q_offset + row0), lastB = last_key(p, p.q_offset + row0 + 8);

  uint32_t qa[KSTEPS][4];
  float o[DREGS];
#pragma unroll
  for (int i = 0; i < DREGS; ++i) o[i] = 0.f;
  float mA = -INFINITY, mB = -INFINITY, lA = 0.f, lB = 0.f;

  const auto load_q_frags = [&] {
#pragma unroll
    for (int kk = 0; kk < KSTEPS; ++kk) {
      const int r = warp * 16 + (lane % 8) + 8 * ((lane / 8) % 2);
      ldmatrix_x4(smem_addr(sQ + sw128<BM>(r, 2 * kk + lane / 16)), qa[kk][0], qa[kk][1], qa[kk][2], qa[kk][3]);
    }
  };
  if constexpr (LEAN) {
    // Q occupies buffer 1: take its fragments before tile 1 is loaded there.
    cp_async_wait<0>();
    __syncthreads();
    load_q_frags();
    __syncthreads();
  }

  for (int t = 0; t < n_tiles; ++t) {
    const int buf = t & 1;
    if (t + 1 < n_tiles) {
      const int64_t n1 = int64_t(t + 1) * BN;
      const int valid = int(p.T - n1 < BN ? p.T - n1 : BN);
      load_tile_sw128<HD, BN, THREADS>(sK + (buf ^ 1) * BN * HD, k_src + n1 * k_stride, k_stride, valid);
      load_tile_sw128<HD, BN, THREADS>(sV + (buf ^ 1) * BN * HD, v_src + n1 * v_stride, v_stride, valid);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    fence_proxy_async();
    __syncthreads();

    if constexpr (!LEAN) {
      if (t == 0) load_q_frags();
    }

    // S = Q K^T (64 rows x 64 keys per warpgroup).
    const uint32_t k_addr = smem_addr(sK + buf * BN * HD);
    float s[32];
#pragma unroll
    for (int i = 0; i < 32; ++i) s[i] = 0.f;
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < KSTEPS; ++kk) {
      const uint32_t a = k_addr + (kk / 4) * BN * 128 + (kk % 4) * 32;
      wgmma_m64n64k16_rs(s, qa[kk], smem_desc(a, 16, 1024), 1);
    }
    wgmma_commit();
    wgmma_wait_all();
    fence_operands(s);

    // s[4j + e]: row g (e < 2) or g + 8 (e >= 2), key 8j + 2 t4 + (e & 1).
    const int64_t n0 = int64_t(t) * BN;
    if (n0 + BN - 1 > full_until) {
#pragma unroll
      for (int j = 0; j < 8; ++j) {
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int64_t key = n0 + 8 * j + 2 * t4 + e;
          if (key > lastA) s[4 * j + e] = -INFINITY;
          if (key > lastB) s[4 * j + 2 + e] = -INFINITY;
        }
      }
    }
    float mxA = -INFINITY, mxB = -INFINITY;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      mxA = fmaxf(mxA, fmaxf(s[4 * j], s[4 * j + 1]));
      mxB = fmaxf(mxB, fmaxf(s[4 * j + 2], s[4 * j + 3]));
    }
    mxA = fmaxf(mxA, __shfl_xor_sync(0xffffffffu, mxA, 1));
    mxA = fmaxf(mxA, __shfl_xor_sync(0xffffffffu, mxA, 2));
    mxB = fmaxf(mxB, __shfl_xor_sync(0xffffffffu, mxB, 1));
    mxB = fmaxf(mxB, __shfl_xor_sync(0xffffffffu, mxB, 2));
    const float newA = fmaxf(mA, mxA * p.scale_log2), newB = fmaxf(mB, mxB * p.scale_log2);
    const float useA = newA == -INFINITY ? 0.f : newA, useB = newB == -INFINITY ? 0.f : newB;
    const float alphaA = fast_exp2(mA - useA), alphaB = fast_exp2(mB - useB);
    mA = newA;
    mB = newB;
    float sumA = 0.f, sumB = 0.f;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      s[4 * j] = fast_exp2(fmaf(s[4 * j], p.scale_log2, -useA));
      s[4 * j + 1] = fast_exp2(fmaf(s[4 * j + 1], p.scale_log2, -useA));
      s[4 * j + 2] = fast_exp2(fmaf(s[4 * j + 2], p.scale_log2, -useB));
      s[4 * j + 3] = fast_exp2(fmaf(s[4 * j + 3], p.scale_log2, -useB));
      sumA += s[4 * j] + s[4 * j + 1];
      sumB += s[4 * j + 2] + s[4 * j + 3];
    }
    lA = lA * alphaA + sumA;
    lB = lB * alphaB + sumB;
#pragma unroll
    for (int i = 0; i < DREGS / 4; ++i) {
      o[4 * i] *= alphaA;
      o[4 * i + 1] *= alphaA;
      o[4 * i + 2] *= alphaB;
      o[4 * i + 3] *= alphaB;
    }

    // O += P V: P (bf16) is the A operand from registers, V the transposed B from shared memory.
    uint32_t pa[BN / 16][4];
#pragma unroll
    for (int kk = 0; kk < BN / 16; ++kk) {
      pa[kk][0] = pack_bf16(s[8 * kk], s[8 * kk + 1]);
      pa[kk][1] = pack_bf16(s[8 * kk + 2], s[8 * kk + 3]);
      pa[kk][2] = pack_bf16(s[8 * kk + 4], s[8 * kk + 5]);
      pa[kk][3] = pack_bf16(s[8 * kk + 6], s[8 * kk + 7]);
    }
    const uint32_t v_addr = smem_addr(sV + buf * BN * HD);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < BN / 16; ++kk) {
      const uint64_t desc = smem_desc(v_addr + kk * 16 * 128, BN * 128, 1024);
      if constexpr (HD == 128) {
        wgmma_m64n128k16_rs_tb(o, pa[kk], desc, 1);
      } else {
        wgmma_m64n64k16_rs_tb(o, pa[kk], desc, 1);
      }
    }
    wgmma_commit();
    wgmma_wait_all();
    fence_operands(o);
    __syncthreads();  // everyone is done with this buffer before it is refilled
  }

  lA += __shfl_xor_sync(0xffffffffu, lA, 1);
  lA += __shfl_xor_sync(0xffffffffu, lA, 2);
  lB += __shfl_xor_sync(0xffffffffu, lB, 1);
  lB += __shfl_xor_sync(0xffffffffu, lB, 2);
  const float sink = p.sinks[h];
  const auto factor = [&](float m, float l) {
    if (l <= 0.f) return 0.f;
    const float lse = (m + log2f(l)) * 0.6931471805599453f;
    return 1.0f / (l * (1.0f + expf(sink - lse)));
  };
  const float fA = factor(mA, lA), fB = factor(mB, lB);
  if (row0 < p.S) {
    __nv_bfloat16* dst = p.out + (int64_t(row0) * p.H + h) * HD + 2 * t4;
#pragma unroll
    for (int i = 0; i < DREGS / 4; ++i) {
      *reinterpret_cast<__nv_bfloat162*>(dst + 8 * i) = __floats2bfloat162_rn(o[4 * i] * fA, o[4 * i + 1] * fA);
    }
  }
  if (row0 + 8 < p.S) {
    __nv_bfloat16* dst = p.out + (int64_t(row0 + 8) * p.H + h) * HD + 2 * t4;
#pragma unroll
    for (int i = 0; i < DREGS / 4; ++i) {
      *reinterpret_cast<__nv_bfloat162*>(dst + 8 * i) = __floats2bfloat162_rn(o[4 * i + 2] * fB, o[4 * i + 3] * fB);
    }
  }
}

}  // namespace falcon::ops::cuda::flash
