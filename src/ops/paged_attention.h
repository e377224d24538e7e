// Attention over a paged KV cache, for batched decode (continuous batching).
//
// The cache is a pool of fixed-size blocks; each sequence owns a list of blocks (its row of the
// block table), so sequences of any length share one allocation, grow a block at a time
// without copying, and hand their blocks back when they finish.
//
// Layout, the same on every device (row-major, contiguous):
//   k_cache      [num_blocks, block_size, H, hd]  keys as qk_norm_rope writes them (expanded to
//                                                 the H query heads, normalised and rotated)
//   v_cache      [num_blocks, block_size, K, hd]  values, K kv heads
//   block_table  [B, max_blocks] I32              block ids of sequence b, in token order
//   seq_lens     [B] I32                          number of cached tokens of sequence b
// Token t of sequence b lives in block block_table[b, t / block_size] at offset
// t % block_size. A "slot" names a token's row in the pool: slot = block * block_size + offset,
// i.e. the row index into k_cache viewed as [num_blocks * block_size, H, hd].
// Entries of block_table past a sequence's last block are never read (fill them with -1).
// block_size is any positive size; 16 or 32 keep a block of one head's keys within a few KB.
#pragma once

#include "core/tensor.h"

namespace falcon::ops {

// Writes one row of keys and values per slot: k_cache[slots[n]] = k[n], v_cache[slots[n]] = v[n].
// k: [N, H, hd]; v: [N, K, hd]; slots: [N] I32. A negative slot skips its row (padding).
// Prefill writes a prompt's N rows at once; a decode step writes one row per sequence.
// dtypes: k, v and the caches share one (F32, or F32/BF16 on CUDA). On the CPU a slot past the
// pool throws InvalidArgument; on CUDA (no host round trip) such a row is skipped.
void paged_kv_write(const Tensor& k, const Tensor& v, const Tensor& slots, Tensor& k_cache, Tensor& v_cache);

// One query row per sequence, attending causally to all its seq_lens[b] cached keys (the
// step's own key must already be written):
//   s[b, h, j] = q[b, h] . k_b[j, h] / sqrt(hd), j < seq_lens[b];  lse = logsumexp_j s
//   out[b, h] = softmax_j(s) v_b[j, h / (H/K)] * sigmoid(lse - sinks[h])
// q, out: [B, H, hd]; sinks: [H] F32; a sequence with seq_lens[b] == 0 gets a zero row (the
// sink takes all the weight). q, caches and out share one dtype. On the CPU block ids and
// lengths are checked (InvalidArgument); on CUDA an out-of-range block id masks its keys and a
// length is clamped to the table's capacity, so a bad table cannot read outside the pool.
// On CUDA (Hopper) the kernel may start while the kernel before it finishes and copy every key
// but each sequence's newest (position seq_lens[b] - 1) before waiting for it: only q and the
// newest keys may come from the kernel just before (as qk_norm_rope_paged writes them); no
// kernel still running when it starts may write the rest of the pool (in the engine: earlier
// steps, finished before the host read their tokens, and the prefills).
void paged_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& block_table,
                     const Tensor& seq_lens, const Tensor& sinks, Tensor& out);

// Checks shared by the ops over a paged pool (InvalidArgument): the caches agree on blocks, block
// size, head_dim and dtype, and K divides H; the table, lengths and sinks fit B rows of the
// pool's H heads.
void check_paged_pool(const char* op, const Tensor& k_cache, const Tensor& v_cache);
void check_paged_rows(const char* op, int64_t B, const Tensor& k_cache, const Tensor& block_table,
                      const Tensor& seq_lens, const Tensor& sinks);

namespace cpu {
void paged_kv_write(const Tensor& k, const Tensor& v, const Tensor& slots, Tensor& k_cache, Tensor& v_cache);
void paged_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& block_table,
                     const Tensor& seq_lens, const Tensor& sinks, Tensor& out);
}  // namespace cpu
namespace cuda {
void paged_kv_write(const Tensor& k, const Tensor& v, const Tensor& slots, Tensor& k_cache, Tensor& v_cache);
void paged_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& block_table,
                     const Tensor& seq_lens, const Tensor& sinks, Tensor& out);
}  // namespace cuda

}  // namespace falcon::ops
