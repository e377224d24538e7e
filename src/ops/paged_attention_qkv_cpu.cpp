// The fused decode attention on the CPU: the two ops it stands for, with each row's newest
// position turned into its slot through the table (checked, as paged_attention checks it).
#include <string>

#include "core/error.h"
#include "ops/paged_attention.h"
#include "ops/paged_attention_qkv.h"
#include "ops/qk_norm_rope.h"

namespace falcon::ops::cpu {

void paged_attention_qkv(const Tensor& qkv, const Tensor& pos_t, const Tensor& pos_hw, const Tensor& golden,
                         float theta, float eps, Tensor& k_cache, Tensor& v_cache, const Tensor& block_table,
                         const Tensor& seq_lens, const Tensor& sinks, Tensor& out) {
  if (qkv.dtype() != DType::F32) throw Unsupported("paged_attention_qkv (cpu): only F32");
  const int64_t B = out.dim(0), H = k_cache.dim(2), hd = k_cache.dim(3), K = v_cache.dim(2);
  const int64_t num_blocks = k_cache.dim(0), bs = k_cache.dim(1), max_blocks = block_table.dim(1);
  Tensor slots = Tensor::empty({B}, DType::I32);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t n = seq_lens.data<int32_t>()[b];
    if (n <= 0) {
      slots.data<int32_t>()[b] = -1;  // padding: no key to write
      continue;
    }
    if (n > max_blocks * bs) {
      throw InvalidArgument("paged_attention_qkv: sequence " + std::to_string(b) + " of " + std::to_string(n) +
                            " keys overflows its table of " + std::to_string(max_blocks) + " blocks");
    }
    const int64_t blk = block_table.data<int32_t>()[b * max_blocks + (n - 1) / bs];
    if (blk < 0 || blk >= num_blocks) {
      throw InvalidArgument("paged_attention_qkv: sequence " + std::to_string(b) + " has no block " +
                            std::to_string(blk) + " for its newest key");
    }
    slots.data<int32_t>()[b] = int32_t(blk * bs + (n - 1) % bs);
  }
  Tensor q = Tensor::empty({B, H, hd}, DType::F32);
  Tensor k_rows = k_cache.reshape({num_blocks * bs, H, hd});
  Tensor v_rows = v_cache.reshape({num_blocks * bs, K, hd});
  qk_norm_rope(qkv, pos_t, pos_hw, golden, theta, eps, q, k_rows, v_rows, &slots);
  paged_attention(q, k_cache, v_cache, block_table, seq_lens, sinks, out);
}

}  // namespace falcon::ops::cpu
