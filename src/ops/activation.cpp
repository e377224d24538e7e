#include "ops/activation.h"

#include "ops/dispatch.h"

namespace falcon::ops {

void squared_relu_gate(const Tensor& a, Tensor& out) {
  const Device d = common_device("squared_relu_gate", {&a, &out});
  check_rank("squared_relu_gate", "a", a, 2);
  if (a.dim(1) % 2 != 0) throw InvalidArgument("squared_relu_gate: a must have an even number of columns");
  check_shape("squared_relu_gate", "out", out, {a.dim(0), a.dim(1) / 2});
  if (out.dtype() != a.dtype()) throw InvalidArgument("squared_relu_gate: a and out must share a dtype");
  if (d == Device::CPU) {
    cpu::squared_relu_gate(a, out);
  } else {
    FALCON_CUDA_DISPATCH(cuda::squared_relu_gate(a, out));
  }
}

void squared_relu(const Tensor& x, Tensor& out) {
  const Device d = common_device("squared_relu", {&x, &out});
  if (x.shape() != out.shape() || x.dtype() != out.dtype()) {
    throw InvalidArgument("squared_relu: x " + x.describe() + " and out " + out.describe() + " must match");
  }
  if (d == Device::CPU) {
    cpu::squared_relu(x, out);
  } else {
    FALCON_CUDA_DISPATCH(cuda::squared_relu(x, out));
  }
}

}  // namespace falcon::ops
