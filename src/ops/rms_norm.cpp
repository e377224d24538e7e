#include "ops/rms_norm.h"

#include "ops/dispatch.h"

namespace falcon::ops {

void rms_norm(const Tensor& x, const Tensor* weight, float eps, Tensor& out) {
  const Device d = common_device("rms_norm", {&x, &out});
  if (x.rank() < 1 || x.shape() != out.shape() || x.dtype() != out.dtype()) {
    throw InvalidArgument("rms_norm: x " + x.describe() + " and out " + out.describe() + " must match");
  }
  if (weight) {
    common_device("rms_norm", {&x, weight});
    check_shape("rms_norm", "weight", *weight, {x.dim(-1)});
    check_dtype("rms_norm", "weight", *weight, DType::F32);
  }
  if (d == Device::CPU) {
    cpu::rms_norm(x, weight, eps, out);
  } else {
    FALCON_CUDA_DISPATCH(cuda::rms_norm(x, weight, eps, out));
  }
}

}  // namespace falcon::ops
