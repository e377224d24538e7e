#include "ops/channel_norm.h"

#include "ops/dispatch.h"

namespace falcon::ops {
namespace {

Device check_args(const char* op, const Tensor& x, const Tensor& out) {
  const Device d = common_device(op, {&x, &out});
  if (x.rank() < 1 || x.shape() != out.shape()) {
    throw InvalidArgument(std::string(op) + ": x " + x.describe() + " and out " + out.describe() +
                          " must match");
  }
  check_dtype(op, "x", x, DType::F32);
  check_dtype(op, "out", out, DType::F32);
  return d;
}

}  // namespace

void channel_l2_normalize(const Tensor& x, float eps, Tensor& out) {
  if (check_args("channel_l2_normalize", x, out) == Device::CPU) {
    cpu::channel_l2_normalize(x, eps, out);
  } else {
    FALCON_CUDA_DISPATCH(cuda::channel_l2_normalize(x, eps, out));
  }
}

void channel_rms_norm(const Tensor& x, const Tensor& weight, float eps, Tensor& out) {
  const Device d = check_args("channel_rms_norm", x, out);
  common_device("channel_rms_norm", {&x, &weight});
  check_shape("channel_rms_norm", "weight", weight, {x.dim(0)});
  check_dtype("channel_rms_norm", "weight", weight, DType::F32);
  if (d == Device::CPU) {
    cpu::channel_rms_norm(x, weight, eps, out);
  } else {
    FALCON_CUDA_DISPATCH(cuda::channel_rms_norm(x, weight, eps, out));
  }
}

}  // namespace falcon::ops
