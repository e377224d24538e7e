// Attention on CUDA: picks the kernel for the shape.
//   BF16, head_dim 64/128, more than kSplitMaxRows query rows: the tensor-core flash kernel.
//   Otherwise (decode steps, short chunks, F32 parity mode, other head_dims): the split-K kernels
//   of attention_split.cuh, which spread the keys of few rows over the whole GPU (one row with
//   head_dim 64/128: the decode kernel).
#include <cmath>
#include <mutex>

#include "ops/attention.h"
#include "ops/attention_flash.cuh"
#include "ops/attention_wgmma.cuh"
#include "ops/attention_split.cuh"
#include "ops/cuda_tuning.h"
#include "ops/cuda_common.cuh"

namespace falcon::ops::cuda {

namespace {

AttentionTuning g_tuning;

template <int HD, int NW, int MT, int BN>
void launch_flash(const flash::Params& p) {
  constexpr size_t smem = flash::smem_bytes<HD, NW, MT, BN>();
  static std::once_flag once;  // raising the dynamic shared-memory limit once per kernel
  std::call_once(once, [] {
    FALCON_CUDA_CHECK(cudaFuncSetAttribute(flash::flash_prefill_kernel<HD, NW, MT, BN>,
                                           cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  });
  constexpr int BM = 16 * MT * NW;
  const dim3 grid(unsigned((p.S + BM - 1) / BM), unsigned(p.H));
  flash::flash_prefill_kernel<HD, NW, MT, BN><<<grid, NW * 32, smem, stream()>>>(p);
  FALCON_CUDA_CHECK_LAUNCH("flash_prefill_kernel");
}

template <int HD, int NWG, bool LEAN>
void launch_wgmma(const flash::Params& p) {
  constexpr size_t smem = flash::wgmma_smem_bytes<HD, NWG, LEAN>();
  static std::once_flag once;
  std::call_once(once, [] {
    FALCON_CUDA_CHECK(cudaFuncSetAttribute(flash::flash_wgmma_kernel<HD, NWG, LEAN>,
                                           cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  });
  constexpr int BM = 64 * NWG;
  const dim3 grid(unsigned((p.S + BM - 1) / BM), unsigned(p.H));
  flash::flash_wgmma_kernel<HD, NWG, LEAN><<<grid, NWG * 128, smem, stream()>>>(p);
  FALCON_CUDA_CHECK_LAUNCH("flash_wgmma_kernel");
}

// The variants the tuning can pick (docs/cuda.md has their timings); anything else falls back
// to the default.
template <int HD>
void launch_flash_variant(const flash::Params& p, const AttentionTuning& t) {
  // wgmma exists on sm_90 only (this file is built for sm_90a; other targets get the mma path).
  // head_dim 64 stays on mma.sync: its wgmma variant gave wrong results on the H100 (the
  // n64 transposed-B product; to investigate), while head_dim 128 matched the reference.
  if constexpr (HD == 128) {
    if (t.flash_wgmma && compute_capability() == 90) {
      if (t.flash_warpgroups == 2) {
        launch_wgmma<HD, 2, false>(p);
      } else if (t.flash_wgmma_lean) {
        launch_wgmma<HD, 1, true>(p);
      } else {
        launch_wgmma<HD, 1, false>(p);
      }
      return;
    }
  }
  if (t.flash_rows_per_warp == 16 && t.flash_block_n == 64) {
    t.flash_warps == 8 ? launch_flash<HD, 8, 1, 64>(p) : launch_flash<HD, 4, 1, 64>(p);
  } else if (t.flash_rows_per_warp == 32 && t.flash_block_n == 32) {
    launch_flash<HD, 4, 2, 32>(p);
  } else {
    launch_flash<HD, 4, 2, 64>(p);
  }
}

bool flash_eligible(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out) {
  const int64_t hd = q.dim(2);
  if (q.dtype() != DType::BF16 || (hd != 64 && hd != 128)) return false;
  if (q.dim(0) <= g_tuning.split_max_rows) return false;
  // cp.async moves 16-byte chunks; the stores are 4-byte pairs.
  return aligned_to(q.raw(), 16) && aligned_to(k.raw(), 16) && aligned_to(v.raw(), 16) && aligned_to(out.raw(), 4);
}

void run_flash(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& sinks, const AttentionMask& mask,
               Tensor& out) {
  flash::Params p;
  p.q = q.data<__nv_bfloat16>();
  p.k = k.data<__nv_bfloat16>();
  p.v = v.data<__nv_bfloat16>();
  p.out = out.data<__nv_bfloat16>();
  p.sinks = sinks.data<float>();
  p.S = int(q.dim(0));
  p.H = int(q.dim(1));
  p.K = int(v.dim(1));
  p.T = int(k.dim(0));
  p.q_offset = mask.q_offset;
  p.image_begin = mask.image_begin;
  p.image_end = mask.image_end;
  const int hd = int(q.dim(2));
  p.scale_log2 = float(1.4426950408889634 / std::sqrt(double(hd)));
  if (hd == 128) {
    launch_flash_variant<128>(p, g_tuning);
  } else {
    launch_flash_variant<64>(p, g_tuning);
  }
}

}  // namespace

void set_attention_tuning(const AttentionTuning& t) { g_tuning = t; }
AttentionTuning attention_tuning() { return g_tuning; }

void attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& sinks, const AttentionMask& mask,
               Tensor& out) {
  const int64_t S = q.dim(0), H = q.dim(1), hd = q.dim(2), T = k.dim(0);
  if (S == 0 || H == 0 || hd == 0) return;
  if (T > int64_t(INT32_MAX)) throw Unsupported("attention (cuda): more than 2^31 keys");
  if (flash_eligible(q, k, v, out)) {
    run_flash(q, k, v, sinks, mask, out);
    return;
  }
  dispatch_float(q.dtype(), "attention", [&](auto tag) {
    using T_ = typename decltype(tag)::type;
    attn::SplitParams<T_> p{};
    p.q = q.data<T_>();
    p.k = k.data<T_>();
    p.v = v.data<T_>();
    p.out = out.data<T_>();
    p.sinks = sinks.data<float>();
    p.rows = int(S);
    p.H = int(H);
    p.K = int(v.dim(1));
    p.hd = int(hd);
    p.scale_log2 = float(1.4426950408889634 / std::sqrt(double(hd)));
    const attn::ContiguousKeys keys{mask.q_offset, mask.image_begin, mask.image_end};
    const int rows_per_block = S == 1 ? 1 : S == 2 ? 2 : S <= 4 ? 4 : 8;
    attn::run_split_attention(p, keys, rows_per_block, T);
  });
}

}  // namespace falcon::ops::cuda
