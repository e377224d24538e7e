#include "ops/group_norm.h"

#include "ops/dispatch.h"

namespace falcon::ops {
namespace {

void check_groups(const char* op, int64_t c, int groups) {
  if (groups < 1 || c % groups != 0) {
    throw InvalidArgument(std::string(op) + ": " + std::to_string(c) +
                          " channels do not split into " + std::to_string(groups) + " groups");
  }
}

void check_channel_vector(const char* op, const char* name, const Tensor& t, int64_t c) {
  check_shape(op, name, t, {c});
  check_dtype(op, name, t, DType::F32);
}

}  // namespace

void group_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, int groups, float eps,
                bool silu, Tensor& out) {
  const Device d = common_device("group_norm", {&x, &weight, &bias, &out});
  if (x.rank() < 1 || x.shape() != out.shape()) {
    throw InvalidArgument("group_norm: x " + x.describe() + " and out " + out.describe() +
                          " must match");
  }
  check_dtype("group_norm", "x", x, DType::F32);
  check_dtype("group_norm", "out", out, DType::F32);
  const int64_t c = x.dim(0);
  check_channel_vector("group_norm", "weight", weight, c);
  check_channel_vector("group_norm", "bias", bias, c);
  check_groups("group_norm", c, groups);
  if (d == Device::CPU) {
    cpu::group_norm(x, weight, bias, groups, eps, silu, out);
  } else {
    FALCON_CUDA_DISPATCH(cuda::group_norm(x, weight, bias, groups, eps, silu, out));
  }
}

void channel_moments(const Tensor& x, Tensor& moments) {
  const Device d = common_device("channel_moments", {&x, &moments});
  if (x.rank() < 1) throw InvalidArgument("channel_moments: x is a scalar");
  check_dtype("channel_moments", "x", x, DType::F32);
  check_shape("channel_moments", "moments", moments, {x.dim(0), 2});
  check_dtype("channel_moments", "moments", moments, DType::F32);
  if (d == Device::CPU) {
    cpu::channel_moments(x, moments);
  } else {
    FALCON_CUDA_DISPATCH(cuda::channel_moments(x, moments));
  }
}

void group_norm_affine(const Tensor& moments, const Tensor& weight, const Tensor& bias, int groups,
                       float eps, Tensor& scale, Tensor& shift) {
  const Device d = common_device("group_norm_affine", {&moments, &weight, &bias, &scale, &shift});
  check_rank("group_norm_affine", "moments", moments, 2);
  const int64_t c = moments.dim(0);
  check_shape("group_norm_affine", "moments", moments, {c, 2});
  check_dtype("group_norm_affine", "moments", moments, DType::F32);
  for (const auto& [name, t] : {std::pair<const char*, const Tensor*>{"weight", &weight},
                                {"bias", &bias},
                                {"scale", &scale},
                                {"shift", &shift}}) {
    check_channel_vector("group_norm_affine", name, *t, c);
  }
  check_groups("group_norm_affine", c, groups);
  if (d == Device::CPU) {
    cpu::group_norm_affine(moments, weight, bias, groups, eps, scale, shift);
  } else {
    FALCON_CUDA_DISPATCH(cuda::group_norm_affine(moments, weight, bias, groups, eps, scale, shift));
  }
}

}  // namespace falcon::ops
