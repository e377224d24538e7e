// Helpers shared by the tests: the devices to run on, random inputs, error metrics.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"
#include "core/tensor.h"

namespace falcon::test {

// CPU always; CUDA when built in and a GPU is present. Op tests are parameterised over these.
std::vector<Device> test_devices();
std::string device_param_name(Device d);

// Deterministic pseudo-random F32 tensor on the CPU, values uniform in [lo, hi).
Tensor random_tensor(const Shape& shape, uint64_t seed, float lo = -1.f, float hi = 1.f);
// F32 copy on the CPU of a tensor of any float dtype and device.
Tensor to_cpu_f32(const Tensor& t);
// Converts a CPU F32 tensor to `dtype` (F32/BF16/F16) on `device`.
Tensor convert(const Tensor& cpu_f32, DType dtype, Device device);

// ||a - b|| / ||b|| over all elements (F32 CPU tensors).
double rel_l2(const Tensor& a, const Tensor& b);
double max_abs_diff(const Tensor& a, const Tensor& b);

std::string fixtures_dir();  // the copy of the reference fixtures under tests/fixtures
std::string tests_dir();
std::string bin_dir();       // build/bin, where the falcon CLI lives

}  // namespace falcon::test

namespace falcon::test {
inline std::string device_test_name(const ::testing::TestParamInfo<Device>& p) { return device_param_name(p.param); }
}  // namespace falcon::test

// Runs a TEST_P suite parameterised by Device on every device built in.
#define FALCON_INSTANTIATE_DEVICE_TESTS(Suite) \
  INSTANTIATE_TEST_SUITE_P(Devices, Suite, ::testing::ValuesIn(::falcon::test::test_devices()), \
                           ::falcon::test::device_test_name)
