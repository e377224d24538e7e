// CUDA entry points of ops that have no CUDA kernel yet (the AnyUp upsampler's ops: phase 2 of
// the CUDA backend). Each throws Unsupported so that a CUDA build links and callers get a clear
// error; the CPU path is unaffected. When an op's real <op>_cuda.cu lands, delete its stub here
// (the linker reports the duplicate otherwise).
#include <string>

#include "core/error.h"
#include "ops/adaptive_avg_pool2d.h"
#include "ops/bilinear_resize.h"
#include "ops/channel_affine.h"
#include "ops/channel_norm.h"
#include "ops/chw_layout.h"
#include "ops/conv2d.h"
#include "ops/feature_unification.h"
#include "ops/grid_rope.h"
#include "ops/group_norm.h"
#include "ops/window_cross_attention.h"

namespace falcon::ops::cuda {

namespace {
[[noreturn]] void pending(const char* op) {
  throw Unsupported(std::string(op) + ": no CUDA kernel yet (run the upsampler on the CPU)");
}
}  // namespace

void adaptive_avg_pool2d(const Tensor&, Tensor&) { pending("adaptive_avg_pool2d"); }
void bilinear_resize(const Tensor&, Tensor&) { pending("bilinear_resize"); }
void channel_affine(const Tensor&, const Tensor&, const Tensor&, Tensor&, bool) { pending("channel_affine"); }
void channel_l2_normalize(const Tensor&, float, Tensor&) { pending("channel_l2_normalize"); }
void channel_rms_norm(const Tensor&, const Tensor&, float, Tensor&) { pending("channel_rms_norm"); }
void hwc_to_chw(const Tensor&, Tensor&) { pending("hwc_to_chw"); }
void crop_chw(const Tensor&, Tensor&) { pending("crop_chw"); }
void conv2d(const Tensor&, const Tensor&, const Tensor*, int, PadMode, Tensor&, bool, const Conv2dFusion&) {
  pending("conv2d");
}
void feature_unification(const Tensor&, const Tensor&, Tensor&) { pending("feature_unification"); }
void grid_rope(const Tensor&, const Tensor&, Tensor&) { pending("grid_rope"); }
void group_norm(const Tensor&, const Tensor&, const Tensor&, int, float, bool, Tensor&) { pending("group_norm"); }
void channel_moments(const Tensor&, Tensor&) { pending("channel_moments"); }
void group_norm_affine(const Tensor&, const Tensor&, const Tensor&, int, float, Tensor&, Tensor&) {
  pending("group_norm_affine");
}
void window_cross_attention(const Tensor&, const Tensor&, const Tensor&, int, float, float, Tensor&) {
  pending("window_cross_attention");
}

}  // namespace falcon::ops::cuda
