// The decode step's transformer blocks, all layers, as one op: for each layer l, on rows x [B, D]
//   x += wo . paged_attention_qkv(wqkv . rms_norm(x))      rms_norm weightless, eps
//   x += w2 . squared_relu_gate(w13 . rms_norm(x))         w13 rows interleaved (activation.h)
// with each row's key and value written to layer l's paged pool at its newest position
// (paged_attention_qkv.h states the pool, the table and the rotation). x is updated in place.
//
// Where a kernel does not take the shape this runs the ops above one by one (their
// intermediates in `scratch`), which is also the CPU backend. On CUDA, one row of BF16 weights
// and activations (head_dim 64 or 128, at most two query heads per kv head, every product's
// inner dimension a multiple of 256) can run as one persistent kernel (DecodeLayersTuning::
// persistent; off by default, measured slower: docs/cuda.md, Phase 8): one block per SM, the
// layers' phases (qkv product, attention, output product, w13 product with the gate, down
// product) separated by grid-wide barriers instead of kernel boundaries, each phase's weights
// loaded into registers before the barrier in front of it, and each layer's keys and values
// copied into shared memory while the layer before runs (docs/cuda.md, Phase 8). Its sums run
// in another order than the separate ops': results agree to f32 rounding before each bf16
// store, not bit for bit.
#pragma once

#include <vector>

#include "core/tensor.h"

namespace falcon::ops {

struct DecodeLayer {
  const Tensor* wqkv;   // [(H + 2K) hd, D]
  const Tensor* wo;     // [D, H hd]
  const Tensor* w13;    // [2F, D]
  const Tensor* w2;     // [D, F]
  const Tensor* sinks;  // [H] F32
  Tensor* k_cache;      // [blocks, block_size, H, hd]
  Tensor* v_cache;      // [blocks, block_size, K, hd]
};

// The intermediates of the op-by-op path, in x's dtype and on its device: n [B, D],
// qkv [B, (H + 2K) hd], o [B, H, hd], a [B, 2F], g [B, F].
struct DecodeScratch {
  Tensor* n;
  Tensor* qkv;
  Tensor* o;
  Tensor* a;
  Tensor* g;
};

void decode_layers(Tensor& x, const std::vector<DecodeLayer>& layers, const Tensor& pos_t,
                   const Tensor& pos_hw, const Tensor& golden, float theta, float eps,
                   const Tensor& block_table, const Tensor& seq_lens, const DecodeScratch& scratch);

namespace cuda {
// The persistent kernel; false (nothing launched) where it does not take the shape, the dtypes
// or the device, or DecodeLayersTuning::persistent is off.
bool decode_layers(Tensor& x, const std::vector<DecodeLayer>& layers, const Tensor& pos_t,
                   const Tensor& pos_hw, const Tensor& golden, float theta, float eps,
                   const Tensor& block_table, const Tensor& seq_lens);

struct DecodeLayersTuning {
  // Off by default: measured slower than the kernels one by one on the H100 (1.39-1.42 against
  // 1.09 ms a step at 3,100 keys; docs/cuda.md, Phase 8).
  bool persistent = false;
  // Keys (per block) copied into shared memory at once; 0: as many as fit. A block's split of
  // the keys beyond it is copied in rounds, each after the previous round's arithmetic.
  int max_staged_keys = 0;
  // Splits of each kv head's keys (blocks attending to it); 0: the SMs shared out over the kv
  // heads.
  int splits = 0;
  // The next layer's keys and values are copied into shared memory after this layer's phase
  // stage_at (2: attention, 3: output product, 4: w13, 5: down product) has arrived at its barrier;
  // 1: each layer's at the start of its own attention (no overlap).
  int stage_at = 2;
  // Each block's slice of the weights of this many product phases ahead is prefetched towards L2
  // (bulk prefetches) at each phase's start; 0: none.
  int l2_ahead = 0;
  // Nanoseconds a block's polling thread sleeps between reads of the barrier counter.
  int poll_ns = 0;
  // Benchmarks: a device buffer of 2 (5 layers + 1) x SMs timestamps (see decode_layers_cuda.cu).
  unsigned long long* trace = nullptr;
};
void set_decode_layers_tuning(const DecodeLayersTuning& t);
DecodeLayersTuning decode_layers_tuning();
}  // namespace cuda

}  // namespace falcon::ops
