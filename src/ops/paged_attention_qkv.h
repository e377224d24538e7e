// A decode step's attention together with its input stage: qk_norm_rope_paged, then
// paged_attention (qk_norm_rope.h, paged_attention.h), as one op.
//
// Each row's key and value are written at its newest position, seq_lens[b] - 1, whose block the
// table must hold (no separate slots: the position is the one the attention reads as newest); a
// row with seq_lens[b] == 0 (padding) writes nothing and gets a zero output row.
//   qkv [B, (H + 2K) * hd]; pos_t [B] I32; pos_hw [B, 2] F32; golden [H, hd/4, 2] F32
//   k_cache, v_cache, block_table, seq_lens, sinks as in paged_attention.h; out [B, H, hd]
// On CUDA (head_dim 64 or 128) where the keys stream through the decode kernel's ring (batched
// rows): one kernel; every block normalises and rotates the q heads it needs, the block holding
// a row's newest key builds that key and writes it, so the attention waits for the qkv product
// only. Where the kernel stages whole splits before its wait (few rows), and for other shapes,
// the input-stage kernel (finding each row's slot in the table) then the attention: measured
// faster there (docs/cuda.md, Phase 6). AttentionTuning::decode_fused_input overrides the
// choice. The CPU runs the two ops (and checks the table, as they do).
#pragma once

#include "core/tensor.h"

namespace falcon::ops {

void paged_attention_qkv(const Tensor& qkv, const Tensor& pos_t, const Tensor& pos_hw, const Tensor& golden,
                         float theta, float eps, Tensor& k_cache, Tensor& v_cache, const Tensor& block_table,
                         const Tensor& seq_lens, const Tensor& sinks, Tensor& out);

namespace cpu {
void paged_attention_qkv(const Tensor& qkv, const Tensor& pos_t, const Tensor& pos_hw, const Tensor& golden,
                         float theta, float eps, Tensor& k_cache, Tensor& v_cache, const Tensor& block_table,
                         const Tensor& seq_lens, const Tensor& sinks, Tensor& out);
}
namespace cuda {
void paged_attention_qkv(const Tensor& qkv, const Tensor& pos_t, const Tensor& pos_hw, const Tensor& golden,
                         float theta, float eps, Tensor& k_cache, Tensor& v_cache, const Tensor& block_table,
                         const Tensor& seq_lens, const Tensor& sinks, Tensor& out);
}

}  // namespace falcon::ops
