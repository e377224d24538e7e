#pragma once

#include "core/tensor.h"

namespace falcon::ops {

// The attention input stage of one layer, fused:
//   qkv [S, (H + 2K) * hd] rows split into q [H heads], k [K heads], v [K heads];
//   q and k RMS-normalised per head (no weight, eps);
//   k heads expanded to H (query head h uses kv head h / (H / K));
//   3-D RoPE on q and k, per head h:
//     dims [0, hd/2): pairs (2i, 2i+1), angle pos_t * theta^(-2i / (hd/2))  (f32 as torch)
//     dims [hd/2, hd): pairs (2f, 2f+1), angle pos_h * golden[h, f, 0] + pos_w * golden[h, f, 1]
// Outputs: q [S, H, hd], k [S, H, hd] (expanded, rotated), v [S, K, hd] (copied).
// pos_t: [S] I32; pos_hw: [S, 2] F32; golden: [H, hd/4, 2] F32.
// q/k/v/qkv share the activation dtype (F32 on the CPU). k and v may be views into a KV cache.
void qk_norm_rope(const Tensor& qkv, const Tensor& pos_t, const Tensor& pos_hw, const Tensor& golden,
                  float theta, float eps, Tensor& q, Tensor& k, Tensor& v);

// The same stage writing each row's key and value straight into a paged pool (layout in
// paged_attention.h): k_cache [blocks, block_size, H, hd], v_cache [blocks, block_size, K, hd],
// row s to slot slots[s] (I32 [S]); a negative slot writes no key or value (a padding row; its q
// is still written). A decode step saves the separate paged_kv_write this way. A slot past the
// pool throws InvalidArgument on the CPU and is skipped on CUDA (no host round trip).
void qk_norm_rope_paged(const Tensor& qkv, const Tensor& pos_t, const Tensor& pos_hw, const Tensor& golden,
                        float theta, float eps, Tensor& q, const Tensor& slots, Tensor& k_cache, Tensor& v_cache);

// The input checks shared with the ops that run this stage (InvalidArgument): K divides H,
// hd % 4 == 0, qkv [S, (H + 2K) hd], pos_t [S] I32, pos_hw [S, 2] F32, golden [H, hd/4, 2] F32.
void check_rope_inputs(const char* op, const Tensor& qkv, const Tensor& pos_t, const Tensor& pos_hw,
                       const Tensor& golden, int64_t S, int64_t H, int64_t K, int64_t hd);

// Backends: k [rows, H, hd] and v [rows, K, hd]; row s of the output goes to row s, or to row
// slots[s] when slots is given (then rows is the pool's capacity, not S).
namespace cpu {
void qk_norm_rope(const Tensor& qkv, const Tensor& pos_t, const Tensor& pos_hw, const Tensor& golden,
                  float theta, float eps, Tensor& q, Tensor& k, Tensor& v, const Tensor* slots);
}
namespace cuda {
// Row s to the slot of its sequence's newest paged position, lens[s] - 1, through row s of the
// block table (paged_attention_qkv's two-kernel path); a missing block or lens[s] == 0 skips.
struct NewestSlots {
  const Tensor* block_table;  // [S, max_blocks] I32
  const Tensor* lens;         // [S] I32
  int64_t block_size;
};
void qk_norm_rope(const Tensor& qkv, const Tensor& pos_t, const Tensor& pos_hw, const Tensor& golden,
                  float theta, float eps, Tensor& q, Tensor& k, Tensor& v, const Tensor* slots,
                  const NewestSlots* newest = nullptr);
}

// The 1-D RoPE inverse frequencies exactly as the reference computes them in f32:
// 1 / theta^(2i / half_dim) for i < half_dim / 2.
float rope_inv_freq(float theta, int half_dim, int i);

}  // namespace falcon::ops
