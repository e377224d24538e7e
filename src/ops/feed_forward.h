// The transformer block's feed-forward half on rows x [B, D], in place:
//   x += w2 . squared_relu_gate(w13 . rms_norm(x))
// rms_norm weightless with eps; w13 [2F, D] has its rows interleaved (gate, up) as
// activation.h states; w2 [D, F].
//
// Where no kernel takes the shape this runs the two products (linear.h, the norm and the gate
// as their prologues; intermediates in `scratch`), which is also the CPU backend. On CUDA one
// BF16 row (D a multiple of 256 up to 1024, F a multiple of 8) runs as one kernel instead of
// two: each block owns a slice of the F hidden units, so the gate never has to be complete
// anywhere. The block copies its slice's w13 rows into shared memory and its w2 columns into
// registers before it waits for the kernel before (programmatic dependent launch), then computes
// the norm, its gate values and its D partial sums of the down product; the partial sums meet
// in a two-level tree of "last block of a group adds them" (fixed order: deterministic), whose
// last block adds them to x. Roundings are the two products': the norm, the w13 outputs and the
// gate rounded to the activation dtype, x rounded once after the sum; the sum over F runs in
// another order than the GEMV's, so results agree to f32 rounding, not bit for bit.
#pragma once

#include "core/tensor.h"

namespace falcon::ops {

// The intermediates of the two-product path, in x's dtype and on its device: n [B, D],
// a [B, 2F], g [B, F].
struct FeedForwardScratch {
  Tensor* n;
  Tensor* a;
  Tensor* g;
};

void feed_forward(Tensor& x, const Tensor& w13, const Tensor& w2, float eps,
                  const FeedForwardScratch& scratch);

namespace cuda {
// The one-kernel form; false (nothing launched) where it does not take the shape, the dtypes or
// the device, or FeedForwardTuning::fused is off.
bool feed_forward(Tensor& x, const Tensor& w13, const Tensor& w2, float eps);

struct FeedForwardTuning {
  // Off by default: measured slower than the two products on the H100 (docs/cuda.md, Phase 9).
  bool fused = false;
  // Hidden units per block (a multiple of 8, at most 32); 0: the smallest that needs no more
  // blocks than the GPU has multiprocessors.
  int chunk = 0;
  // Blocks whose partial sums one block adds up in the tree's first level; 0: ~sqrt(blocks).
  int group = 0;
  // The next kernel may launch at this one's start (its blocks load their weights during this
  // one) or only once this one's input is ready.
  bool early_trigger = true;
  // Benchmarks: a device buffer of 8 x blocks timestamps (globaltimer, ns) the kernel writes at
  // block b's [8 b + k]: k = 0 its start, 1 past its wait for the kernel before, 2 its w13 rows
  // in shared memory, 3 counted into its group, 4 (a group's last block) counted into the
  // groups, 5 (the last block) x written.
  unsigned long long* trace = nullptr;
};
void set_feed_forward_tuning(const FeedForwardTuning& t);
FeedForwardTuning feed_forward_tuning();
}  // namespace cuda

}  // namespace falcon::ops
