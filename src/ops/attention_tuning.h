// Knobs of the CUDA attention kernels, for the benchmark to compare variants. Defaults are
// the measured best on the H100 (docs/cuda.md); the engine never needs to touch them.
#pragma once

namespace falcon::ops::cuda {

struct AttentionTuning {
  int flash_warps = 8;      // warps per flash prefill block (4 or 8): 16 query rows each
  int split_max_rows = 64;  // up to this many query rows use the split-K kernel
};

void set_attention_tuning(const AttentionTuning& t);
AttentionTuning attention_tuning();

}  // namespace falcon::ops::cuda
