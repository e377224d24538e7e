#include "test_support.h"

#include <cmath>
#include <random>

#include "core/error.h"

namespace falcon::test {

std::vector<Device> test_devices() {
  std::vector<Device> out{Device::CPU};
  if (device_available(Device::CUDA)) out.push_back(Device::CUDA);
  return out;
}

std::string device_param_name(Device d) { return device_name(d); }

Tensor random_tensor(const Shape& shape, uint64_t seed, float lo, float hi) {
  Tensor t = Tensor::empty(shape, DType::F32);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = dist(rng);
  return t;
}

Tensor to_cpu_f32(const Tensor& t) {
  Tensor h = t.on_cpu() ? t : t.to(Device::CPU);
  if (h.dtype() == DType::F32) return h;
  Tensor out = Tensor::empty(h.shape(), DType::F32);
  float* o = out.data<float>();
  const auto* s = h.data<uint16_t>();
  for (int64_t i = 0; i < h.numel(); ++i) {
    if (h.dtype() == DType::BF16) o[i] = bf16_to_f32(s[i]);
    else if (h.dtype() == DType::F16) o[i] = f16_to_f32(s[i]);
    else throw InvalidArgument("to_cpu_f32: unsupported dtype");
  }
  return out;
}

Tensor convert(const Tensor& cpu_f32, DType dtype, Device device) {
  Tensor h;
  if (dtype == DType::F32) {
    h = cpu_f32;
  } else {
    h = Tensor::empty(cpu_f32.shape(), dtype);
    auto* o = h.data<uint16_t>();
    const float* s = cpu_f32.data<float>();
    for (int64_t i = 0; i < h.numel(); ++i) o[i] = dtype == DType::BF16 ? f32_to_bf16(s[i]) : f32_to_f16(s[i]);
  }
  return device == Device::CPU ? h.clone() : h.to(device);
}

double rel_l2(const Tensor& a, const Tensor& b) {
  if (a.numel() != b.numel()) return INFINITY;
  const float* x = a.data<float>();
  const float* y = b.data<float>();
  double num = 0, den = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    num += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
    den += double(y[i]) * y[i];
  }
  return std::sqrt(num) / (den > 0 ? std::sqrt(den) : 1.0);
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  if (a.numel() != b.numel()) return INFINITY;
  double m = 0;
  for (int64_t i = 0; i < a.numel(); ++i) m = std::max(m, std::fabs(double(a.data<float>()[i]) - b.data<float>()[i]));
  return m;
}

std::string fixtures_dir() { return FALCON_FIXTURES_DIR; }
std::string tests_dir() { return FALCON_TESTS_DIR; }
std::string bin_dir() { return FALCON_BIN_DIR; }

}  // namespace falcon::test
