#include "ops/chw_layout.h"

#include "ops/dispatch.h"

namespace falcon::ops {
namespace {

Device check_args(const char* op, const Tensor& x, const Tensor& out) {
  const Device d = common_device(op, {&x, &out});
  check_rank(op, "x", x, 3);
  check_rank(op, "out", out, 3);
  check_dtype(op, "x", x, DType::F32);
  check_dtype(op, "out", out, DType::F32);
  return d;
}

}  // namespace

void hwc_to_chw(const Tensor& x, Tensor& out) {
  const Device d = check_args("hwc_to_chw", x, out);
  if (out.dim(0) != x.dim(2) || out.dim(1) < x.dim(0) || out.dim(2) < x.dim(1)) {
    throw InvalidArgument("hwc_to_chw: " + x.describe() + " does not fit in " + out.describe());
  }
  if (d == Device::CPU) {
    cpu::hwc_to_chw(x, out);
  } else {
    FALCON_CUDA_DISPATCH(cuda::hwc_to_chw(x, out));
  }
}

void crop_chw(const Tensor& x, Tensor& out) {
  const Device d = check_args("crop_chw", x, out);
  if (out.dim(0) != x.dim(0) || out.dim(1) > x.dim(1) || out.dim(2) > x.dim(2)) {
    throw InvalidArgument("crop_chw: cannot crop " + out.describe() + " from " + x.describe());
  }
  if (d == Device::CPU) {
    cpu::crop_chw(x, out);
  } else {
    FALCON_CUDA_DISPATCH(cuda::crop_chw(x, out));
  }
}

}  // namespace falcon::ops
