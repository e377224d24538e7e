#include "ops/convert.h"

#include "ops/dispatch.h"

namespace falcon::ops {

void convert(const Tensor& x, Tensor& out) {
  const Device d = common_device("convert", {&x, &out});
  if (x.shape() != out.shape()) throw InvalidArgument("convert: shapes differ: " + x.describe() + " vs " + out.describe());
  if (!is_float(x.dtype()) || !is_float(out.dtype())) throw InvalidArgument("convert: float dtypes only");
  if (d == Device::CPU) {
    cpu::convert(x, out);
  } else {
    FALCON_CUDA_DISPATCH(cuda::convert(x, out));
  }
}

void add(const Tensor& a, const Tensor& b, Tensor& out) {
  const Device d = common_device("add", {&a, &b, &out});
  if (a.shape() != b.shape() || a.shape() != out.shape() || a.dtype() != b.dtype() || a.dtype() != out.dtype()) {
    throw InvalidArgument("add: " + a.describe() + " + " + b.describe() + " -> " + out.describe());
  }
  if (d == Device::CPU) {
    cpu::add(a, b, out);
  } else {
    FALCON_CUDA_DISPATCH(cuda::add(a, b, out));
  }
}

}  // namespace falcon::ops
