#include "ops/linear.h"

#include "ops/activation.h"
#include <optional>
#include <string>

#include "ops/dispatch.h"
#include "ops/rms_norm.h"

namespace falcon::ops {

namespace {
std::string profile_name(const char* op, int64_t m, const Tensor& w) {
  return std::string(op) + " " + dtype_name(w.dtype()) + " [" + std::to_string(w.dim(0)) + "x" +
         std::to_string(w.dim(1)) + "] M" + (m == 1 ? "=1" : m <= 8 ? "<=8" : m <= 64 ? "<=64" : ">64");
}
}  // namespace

void linear(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& y, bool accumulate) {
  const Device d = common_device("linear", {&x, &w, &y});
  check_rank("linear", "x", x, 2);
  check_rank("linear", "w", w, 2);
  if (x.dim(1) != w.dim(1)) {
    throw InvalidArgument("linear: x " + x.describe() + " does not match weight " + w.describe());
  }
  check_shape("linear", "y", y, {x.dim(0), w.dim(0)});
  if (y.dtype() != x.dtype()) throw InvalidArgument("linear: y must have x's dtype");
  if (bias) {
    common_device("linear", {&x, bias});
    check_shape("linear", "bias", *bias, {w.dim(0)});
    check_dtype("linear", "bias", *bias, DType::F32);
  }
  if (d == Device::CPU) {
    cpu::linear(x, w, bias, y, accumulate);
  } else {
    // Profiled per weight shape and row bucket: the decode step's products differ by 10x.
    std::optional<OpProfileScope> timed;
    if (op_profile_enabled()) timed.emplace(profile_name("linear", x.dim(0), w));
    FALCON_CUDA_DISPATCH(cuda::linear(x, w, bias, y, accumulate));
  }
}

void linear(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& y, bool accumulate,
            const LinearPrologue& prologue) {
  check_rank("linear", "x", x, 2);
  check_rank("linear", "w", w, 2);
  const int64_t M = x.dim(0), K = w.dim(1);
  const bool gate = prologue.kind == LinearPrologue::Kind::SquaredReluGate;
  if (x.dim(1) != (gate ? 2 * K : K)) {
    throw InvalidArgument("linear: x " + x.describe() + " does not match weight " + w.describe() +
                          (gate ? " after the squared-ReLU gate" : ""));
  }
  if (!prologue.scratch) throw InvalidArgument("linear: the prologue needs a scratch tensor");
  Tensor& t = *prologue.scratch;
  const Device d = common_device("linear", {&x, &w, &y, &t});
  check_shape("linear", "scratch", t, {M, K});
  check_dtype("linear", "scratch", t, x.dtype());
  check_shape("linear", "y", y, {M, w.dim(0)});
  if (y.dtype() != x.dtype()) throw InvalidArgument("linear: y must have x's dtype");
  if (bias) {
    common_device("linear", {&x, bias});
    check_shape("linear", "bias", *bias, {w.dim(0)});
    check_dtype("linear", "bias", *bias, DType::F32);
  }
  if (d == Device::CUDA) {
    bool fused = false;
    std::optional<OpProfileScope> timed;
    if (op_profile_enabled()) timed.emplace(profile_name(gate ? "linear+gate" : "linear+rms_norm", M, w));
    FALCON_CUDA_DISPATCH(fused = cuda::linear_fused(x, w, bias, y, accumulate, prologue));
    if (fused) return;
    timed.reset();
  }
  if (gate) {
    squared_relu_gate(x, t);
  } else {
    rms_norm(x, nullptr, prologue.eps, t);
  }
  linear(t, w, bias, y, accumulate);
}

Tensor prepare_linear_weight(const Tensor& w, DType dtype, Device device) {
  check_rank("prepare_linear_weight", "w", w, 2);
  if (!w.on_cpu()) throw InvalidArgument("prepare_linear_weight: source must be on the CPU");
  if (block_elems(dtype) > 1 && w.dim(1) % block_elems(dtype) != 0) {
    throw InvalidArgument("prepare_linear_weight: K=" + std::to_string(w.dim(1)) + " is not a multiple of the " +
                          dtype_name(dtype) + " block size");
  }
  if (device == Device::CPU) return cpu::prepare_linear_weight(w, dtype);
  FALCON_CUDA_DISPATCH(return cuda::prepare_linear_weight(w, dtype));
}

}  // namespace falcon::ops
