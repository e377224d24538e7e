#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>

#include "core/device.h"
#include "core/dtype.h"
#include "core/safetensors.h"
#include "test_support.h"

namespace falcon {
namespace {

TEST(DType, Bf16RoundsToNearestEven) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  // 1 + 2^-8 lies exactly between two bf16 values: ties go to even (1.0).
  EXPECT_EQ(f32_to_bf16(1.00390625f), 0x3f80);
  EXPECT_EQ(f32_to_bf16(1.01171875f), 0x3f82);
  EXPECT_EQ(bf16_to_f32(0xc000), -2.0f);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
}

TEST(DType, F16RoundTrip) {
  for (float v : {0.f, 1.f, -2.5f, 65504.f, 6.1035156e-05f, 5.9604645e-08f, 0.333251953125f}) {
    EXPECT_EQ(f16_to_f32(f32_to_f16(v)), v) << v;
  }
  EXPECT_TRUE(std::isinf(f16_to_f32(f32_to_f16(1e6f))));
}

TEST(DType, Names) {
  EXPECT_EQ(dtype_from_name("bf16"), DType::BF16);
  EXPECT_EQ(dtype_from_name("F32"), DType::F32);
  EXPECT_THROW(dtype_from_name("f8"), InvalidArgument);
  EXPECT_EQ(row_bytes(DType::Q8, 64), 72u);
  EXPECT_EQ(row_bytes(DType::Q4, 64), 40u);
}

std::string temp_path(const char* name) { return ::testing::TempDir() + name; }

TEST(Safetensors, WriteThenReadBack) {
  Tensor a = test::random_tensor({3, 5}, 1);
  Tensor b = Tensor::empty({4}, DType::I64);
  for (int i = 0; i < 4; ++i) b.data<int64_t>()[i] = -i * 1000000000000LL;
  const std::string path = temp_path("rw.safetensors");
  write_safetensors(path, {{"a", a}, {"b", b}}, {{"format", "pt"}});
  SafetensorsFile f = SafetensorsFile::open(path);
  EXPECT_EQ(f.names(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(f.metadata().at("format"), "pt");
  Tensor a2 = f.view("a");
  EXPECT_EQ(a2.shape(), (Shape{3, 5}));
  EXPECT_EQ(test::max_abs_diff(a2, a), 0.0);
  EXPECT_EQ(f.view("b").data<int64_t>()[3], -3000000000000LL);
  EXPECT_THROW(f.view("c"), FileError);
}

TEST(Safetensors, ReadsTheFixtureModels) {
  SafetensorsFile f = SafetensorsFile::open(test::fixtures_dir() + "/ocr-tiny/model/model.safetensors");
  EXPECT_EQ(f.info("tok_embeddings.weight").dtype, DType::BF16);
  EXPECT_EQ(f.info("tok_embeddings.weight").shape, (Shape{1024, 96}));
  EXPECT_EQ(f.info("freqs_cis_golden").dtype, DType::F32);
}

void write_raw(const std::string& path, const std::string& header, size_t data_bytes, bool lie_length = false) {
  std::ofstream out(path, std::ios::binary);
  uint64_t n = header.size() + (lie_length ? 1000 : 0);
  out.write(reinterpret_cast<const char*>(&n), 8);
  out << header << std::string(data_bytes, '\0');
}

TEST(Safetensors, RejectsCorruptFiles) {
  const std::string p = temp_path("bad.safetensors");
  auto expect_error = [&](const std::string& header, size_t bytes, const char* needle, bool lie = false) {
    write_raw(p, header, bytes, lie);
    try {
      SafetensorsFile::open(p);
      ADD_FAILURE() << "accepted: " << header;
    } catch (const FileError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error(R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})", 8, "outside the data block");
  expect_error(R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}})", 16, "needs 16");
  expect_error(R"({"w":{"dtype":"F8","shape":[2],"data_offsets":[0,2]}})", 2, "unsupported dtype");
  expect_error(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8, "non-integer dimension");
  expect_error(R"({"w":)", 0, "not valid JSON");
  expect_error(R"({"w":{"dtype":"F32"}})", 0, "malformed");
  expect_error(R"({})", 0, "exceeds the file", true);
  EXPECT_THROW(SafetensorsFile::open(temp_path("missing.safetensors")), FileError);
}

TEST(Tensor, ViewsShareStorage) {
  Tensor t = test::random_tensor({4, 3}, 2);
  Tensor r = t.rows(1, 3);
  EXPECT_EQ(r.shape(), (Shape{2, 3}));
  EXPECT_EQ(r.data<float>(), t.data<float>() + 3);
  EXPECT_THROW(t.rows(2, 5), InvalidArgument);
  EXPECT_THROW(t.reshape({5, 2}), InvalidArgument);
  EXPECT_EQ(t.reshape({12}).data<float>(), t.data<float>());
}

}  // namespace
}  // namespace falcon

namespace falcon {
namespace {

TEST(Safetensors, MisalignedTensorIsCopiedAligned) {
  // An I64 tensor at offset 4 of the data block: legal in the format, misaligned in memory.
  const std::string header = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                             R"("b":{"dtype":"I64","shape":[2],"data_offsets":[4,20]}})";
  std::string file(8, '\0');
  uint64_t n = header.size();
  std::memcpy(file.data(), &n, 8);
  file += header;
  const float a = 1.5f;
  const int64_t b[2] = {-7, 1LL << 40};
  file.append(reinterpret_cast<const char*>(&a), 4);
  file.append(reinterpret_cast<const char*>(b), 16);
  std::shared_ptr<void> owner(new char[file.size()], [](void* p) { delete[] static_cast<char*>(p); });
  std::memcpy(owner.get(), file.data(), file.size());
  const SafetensorsFile f = SafetensorsFile::from_buffer(owner, owner.get(), file.size(), "mem");
  const Tensor t = f.view("b");
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw()) % 8, 0u);
  EXPECT_EQ(t.data<int64_t>()[0], -7);
  EXPECT_EQ(t.data<int64_t>()[1], 1LL << 40);
  EXPECT_EQ(f.view("a").data<float>()[0], 1.5f);
}

// A device allocation the GPU cannot hold is a typed, readable error, and the process keeps
// working afterwards: the memory pool is trimmed and retried first, nothing stays reserved.
TEST(DeviceMemory, OutOfMemoryIsAnErrorAndTheDeviceStaysUsable) {
  if (!device_available(Device::CUDA)) GTEST_SKIP() << "no CUDA device";
  {
    Tensor warm = Tensor::zeros({1 << 20}, DType::F32, Device::CUDA);  // something in the pool
  }
  try {
    Tensor huge = Tensor::empty({int64_t(1) << 40}, DType::F32, Device::CUDA);  // 4 TiB
    FAIL() << "allocated 4 TiB";
  } catch (const OutOfMemory& e) {
    EXPECT_NE(std::string(e.what()).find("out of GPU memory allocating 4194304 MiB"), std::string::npos) << e.what();
  }
  Tensor t = test::random_tensor({1000}, 3, -1, 1);
  const Tensor back = t.to(Device::CUDA).to(Device::CPU);
  EXPECT_EQ(test::max_abs_diff(back, t), 0.0);
}

}  // namespace
}  // namespace falcon
