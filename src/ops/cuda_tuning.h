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
  // One query row per sequence (decode, paged decode), head_dim 64/128: decode_attention_kernel
  // (false: the general split kernel above). Its settings, 0 (or -1) for the measured best of
  // the regime (docs/cuda.md): "few rows" when the (row, kv head) pairs do not fill the SMs
  // (B <= 16 at H = 16, K = 8: latency-bound), else "many rows" (bandwidth-bound).
  bool decode_kernel = true;
  int decode_warps = 0;          // warps per block, 2..8 (few rows 8, many rows 4)
  int decode_stages = 0;         // cp.async ring stages, 2..8 (2; fewer if shared memory runs out)
  int decode_blocks_per_sm = 0;  // the split count fills this many blocks per SM (few rows 1, many rows 2)
  // > 1: at most this many splits (<= 16), the splits of a (row, head group) one thread-block
  // cluster merging in distributed shared memory; 0: partials in global memory merged by the
  // last block to finish; -1: 8 for few rows of contiguous keys, else 0.
  int decode_cluster = -1;
  // Blocks take the pair of query heads sharing a kv head (V read once); false: one head.
  bool decode_pairs = true;
  // Launch the decode kernel as a programmatic dependent of the previous kernel: its blocks
  // start early, prefetch their keys and values towards L2 and wait for it on the device.
  bool decode_pdl = true;
  // The kernel after the decode attention (the output product) may launch at its start and
  // load its weights during the attention (true), or once the attention's keys are in (false).
  bool decode_early_trigger = true;
  // Few paged rows under decode_pdl: each block copies its whole split of keys and values into
  // shared memory before it waits (all but the row's newest key), where the split fits. -1: on; 0: off.
  int decode_stage_all = -1;
  // paged_attention_qkv: the decode kernel with the input stage folded in (1), the input-stage
  // kernel then the attention (0), or -1: folded in where the keys stream through the ring,
  // separate where whole splits are staged (the measured best of each).
  int decode_fused_input = -1;
};

void set_attention_tuning(const AttentionTuning& t);
AttentionTuning attention_tuning();

struct LinearTuning {
  // BF16 x BF16 products with at most this many rows (at most 8) use the warp-per-row GEMV
  // instead of cuBLASLt (faster at one row on the H100, slower at 8: docs/cuda.md); 0: never.
  int gemv_max_rows = 1;
  // The GEMVs let the next kernel launch at their start (true: its blocks can load their weights
  // during this one's wait) or only once their own input is ready (false).
  bool gemv_early_trigger = true;
  // The GEMV with the squared-ReLU gate folded in (the down product) computes each block's gated
  // inputs once, into shared memory (true), or in every warp (false).
  bool gemv_stage_gate = true;
  // The same for the rms_norm folded into the GEMV (wqkv, w13): one warp takes the row's norm, the
  // block normalises the inputs once into shared memory (true), or every warp does both (false).
  bool gemv_stage_norm = true;
  // A one-row GEMV of 9-12 steps of 256 inputs (the down product) holds 12 steps of weights in
  // registers and is compiled for two blocks per SM (true), or holds 16 steps at one block per SM.
  bool gemv_two_blocks = true;
  // Products of at least this many rows whose weights cuBLASLt cannot read (Q8, Q4; F16/BF16
  // against F32 activations) expand the weights, a chunk of rows at a time, to the activation
  // dtype in a scratch buffer and run cuBLASLt on that; fewer rows use the dequantising
  // GEMV/SIMT GEMM. 0: never expand.
  int expand_min_rows = 9;
  // The expansion's scratch: a chunk holds as many weight rows (a multiple of 64) as fit.
  long long expand_chunk_bytes = 16ll << 20;
};

void set_linear_tuning(const LinearTuning& t);
LinearTuning linear_tuning();

}  // namespace falcon::ops::cuda
