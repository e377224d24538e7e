// Knobs of the CUDA kernels, for the benchmark to compare variants. Defaults are
// the measured best on the H100 (docs/cuda.md); the engine never needs to touch them.
#pragma once

namespace falcon::ops::cuda {

struct AttentionTuning {
  // Prefill kernel: wgmma (Hopper warpgroup MMA, 1 or 2 warpgroups of 64 rows per block) when
  // the device is sm_90, else mma.sync with (16 rows per warp, 64 keys per tile, 4 or 8 warps)
  // or (32 rows per warp, 32 or 64 keys per tile, 4 warps).
  bool flash_wgmma = true;      // head_dim 128 only
  int flash_warpgroups = 1;
  bool flash_wgmma_lean = true;  // one warpgroup, Q aliased into a K buffer: 3 blocks per SM
  int flash_rows_per_warp = 16;
  int flash_block_n = 64;
  int flash_warps = 4;
  int split_max_rows = 64;        // up to this many query rows use the split-K kernel
  // The split-K grid aims at this many blocks per multiprocessor; 0: 8 for head_dim <= 64 and
  // 4 above (the best of 4/8/16/32 for each on the H100, docs/cuda.md).
  int split_blocks_per_sm = 0;
};

void set_attention_tuning(const AttentionTuning& t);
AttentionTuning attention_tuning();

struct LinearTuning {
  // BF16 x BF16 products with at most this many rows (at most 8) use the warp-per-row GEMV
  // instead of cuBLASLt (faster at one row on the H100, slower at 8: docs/cuda.md); 0: never.
  int gemv_max_rows = 1;
};

void set_linear_tuning(const LinearTuning& t);
LinearTuning linear_tuning();

}  // namespace falcon::ops::cuda
