// A dense, row-major, contiguous n-d array on one device. Copies share the storage
// (like a shared_ptr); views (reshape, rows) share it too. Ops write into tensors the
// caller allocated, so the forward pass controls every allocation.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/dtype.h"

namespace falcon {

using Shape = std::vector<int64_t>;

std::string shape_str(const Shape& s);
int64_t shape_numel(const Shape& s);

class Tensor {
 public:
  Tensor() = default;

  static Tensor empty(Shape shape, DType dtype, Device device = Device::CPU);
  static Tensor zeros(Shape shape, DType dtype, Device device = Device::CPU);
  // A view of memory owned elsewhere (an mmap'd file); `owner` keeps that memory alive.
  static Tensor wrap(void* data, Shape shape, DType dtype, Device device,
                     std::shared_ptr<void> owner);
  static Tensor from_vector(const std::vector<float>& v, Shape shape);

  bool defined() const { return defined_; }
  const Shape& shape() const { return shape_; }
  int rank() const { return int(shape_.size()); }
  int64_t dim(int i) const;  // negative i counts from the end
  int64_t numel() const { return shape_numel(shape_); }
  size_t nbytes() const;
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  bool on_cpu() const { return device_ == Device::CPU; }

  void* raw() { return data_; }
  const void* raw() const { return data_; }
  template <typename T> T* data() { return static_cast<T*>(data_); }
  template <typename T> const T* data() const { return static_cast<const T*>(data_); }

  // Same storage, new shape with the same element count.
  Tensor reshape(Shape shape) const;
  // Rows [begin, end) along dimension 0, sharing storage.
  Tensor rows(int64_t begin, int64_t end) const;
  // A deep copy on `device`.
  Tensor to(Device device) const;
  Tensor clone() const { return to(device_); }
  // Copies the contents of `src` (same shape and dtype, any device) into this tensor.
  void copy_from(const Tensor& src);
  void fill_zero();

  std::string describe() const;  // "F32[2, 3] cpu"

 private:
  std::shared_ptr<void> storage_;
  void* data_ = nullptr;
  Shape shape_;
  DType dtype_ = DType::F32;
  Device device_ = Device::CPU;
  bool defined_ = false;
};

}  // namespace falcon
