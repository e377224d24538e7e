#include "ops/group_norm.h"

#include "ops/dispatch.h"

namespace falcon::ops {

void group_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, int groups, float eps, bool silu,
                Tensor& out) {
  const Device d = common_device("group_norm", {&x, &weight, &bias, &out});
  if (x.rank() < 1 || x.shape() != out.shape()) {
    throw InvalidArgument("group_norm: x " + x.describe() + " and out " + out.describe() + " must match");
  }
  check_dtype("group_norm", "x", x, DType::F32);
  check_dtype("group_norm", "out", out, DType::F32);
  const int64_t c = x.dim(0);
  check_shape("group_norm", "weight", weight, {c});
  check_shape("group_norm", "bias", bias, {c});
  check_dtype("group_norm", "weight", weight, DType::F32);
  check_dtype("group_norm", "bias", bias, DType::F32);
  if (groups < 1 || c % groups != 0) {
    throw InvalidArgument("group_norm: " + std::to_string(c) + " channels do not split into " +
                          std::to_string(groups) + " groups");
  }
  if (d == Device::CPU) {
    cpu::group_norm(x, weight, bias, groups, eps, silu, out);
  } else {
    FALCON_CUDA_DISPATCH(cuda::group_norm(x, weight, bias, groups, eps, silu, out));
  }
}

}  // namespace falcon::ops
