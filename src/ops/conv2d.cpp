#include "ops/conv2d.h"

#include "ops/dispatch.h"

namespace falcon::ops {

void conv2d(const Tensor& x, const Tensor& w, const Tensor* bias, int padding, PadMode mode,
            Tensor& out, bool accumulate, const Conv2dFusion& fusion, MathPrecision precision) {
  const Device d = common_device("conv2d", {&x, &w, &out});
  check_rank("conv2d", "x", x, 3);
  check_rank("conv2d", "w", w, 4);
  check_dtype("conv2d", "x", x, DType::F32);
  check_dtype("conv2d", "w", w, DType::F32);
  check_dtype("conv2d", "out", out, DType::F32);
  const int64_t ci = x.dim(0), h = x.dim(1), wd = x.dim(2);
  const int64_t co = w.dim(0), k = w.dim(2);
  if (w.dim(1) != ci || w.dim(3) != k || k < 1) {
    throw InvalidArgument("conv2d: weight " + w.describe() + " does not fit input " + x.describe());
  }
  if (padding < 0 || (mode == PadMode::Reflect && (padding >= h || padding >= wd))) {
    throw InvalidArgument("conv2d: padding " + std::to_string(padding) + " not possible for " +
                          x.describe());
  }
  const int64_t ho = h + 2 * padding - k + 1, wo = wd + 2 * padding - k + 1;
  if (ho < 1 || wo < 1)
    throw InvalidArgument("conv2d: kernel larger than the padded input " + x.describe());
  check_shape("conv2d", "out", out, {co, ho, wo});
  if (bias) {
    common_device("conv2d", {&x, bias});
    check_shape("conv2d", "bias", *bias, {co});
    check_dtype("conv2d", "bias", *bias, DType::F32);
  }
  if (out.raw() == x.raw() && !(k == 1 && padding == 0)) {
    throw InvalidArgument("conv2d: only a 1x1 convolution without padding may run in place");
  }
  const bool fused = fusion.in_scale || fusion.in_shift || fusion.in_silu || fusion.out_moments;
  if (fused && !(k == 1 && padding == 0)) {
    throw InvalidArgument("conv2d: fusions are only for 1x1 convolutions without padding");
  }
  if ((fusion.in_scale == nullptr) != (fusion.in_shift == nullptr) ||
      (fusion.in_silu && !fusion.in_scale)) {
    throw InvalidArgument("conv2d: the input transform needs both in_scale and in_shift");
  }
  if (fusion.in_scale) {
    common_device("conv2d", {&x, fusion.in_scale, fusion.in_shift});
    check_shape("conv2d", "in_scale", *fusion.in_scale, {ci});
    check_shape("conv2d", "in_shift", *fusion.in_shift, {ci});
    check_dtype("conv2d", "in_scale", *fusion.in_scale, DType::F32);
    check_dtype("conv2d", "in_shift", *fusion.in_shift, DType::F32);
  }
  if (fusion.out_moments) {
    common_device("conv2d", {&x, fusion.out_moments});
    check_shape("conv2d", "out_moments", *fusion.out_moments, {co, 2});
    check_dtype("conv2d", "out_moments", *fusion.out_moments, DType::F32);
  }
  if (d == Device::CPU) {
    cpu::conv2d(x, w, bias, padding, mode, out, accumulate, fusion);
  } else {
    FALCON_CUDA_DISPATCH(cuda::conv2d(x, w, bias, padding, mode, out, accumulate, fusion, precision));
  }
}

}  // namespace falcon::ops
