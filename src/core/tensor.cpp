#include "core/tensor.h"

#include <sstream>

#include "core/error.h"
#include "core/memory.h"

namespace falcon {

std::string shape_str(const Shape& s) {
  std::ostringstream o;
  o << "[";
  for (size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  o << "]";
  return o.str();
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

static void check_shape(const Shape& shape) {
  for (int64_t d : shape) {
    if (d < 0) throw InvalidArgument("negative dimension in shape " + shape_str(shape));
  }
}

Tensor Tensor::empty(Shape shape, DType dtype, Device device) {
  check_shape(shape);
  Tensor t;
  t.shape_ = std::move(shape);
  t.dtype_ = dtype;
  t.device_ = device;
  t.defined_ = true;
  const int64_t inner = t.shape_.empty() ? 1 : t.shape_.back();
  const int64_t outer = inner ? t.numel() / inner : 0;
  const size_t bytes = size_t(outer) * row_bytes(dtype, inner);
  t.storage_ = allocate_bytes(device, bytes);
  t.data_ = t.storage_.get();
  return t;
}

Tensor Tensor::zeros(Shape shape, DType dtype, Device device) {
  Tensor t = empty(std::move(shape), dtype, device);
  t.fill_zero();
  return t;
}

Tensor Tensor::wrap(void* data, Shape shape, DType dtype, Device device, std::shared_ptr<void> owner) {
  check_shape(shape);
  Tensor t;
  t.shape_ = std::move(shape);
  t.dtype_ = dtype;
  t.device_ = device;
  t.storage_ = std::move(owner);
  t.data_ = data;
  t.defined_ = true;
  return t;
}

Tensor Tensor::from_vector(const std::vector<float>& v, Shape shape) {
  if (shape_numel(shape) != int64_t(v.size())) {
    throw InvalidArgument("from_vector: " + std::to_string(v.size()) + " values for shape " + shape_str(shape));
  }
  Tensor t = empty(std::move(shape), DType::F32);
  std::copy(v.begin(), v.end(), t.data<float>());
  return t;
}

int64_t Tensor::dim(int i) const {
  const int r = rank();
  if (i < 0) i += r;
  if (i < 0 || i >= r) throw InvalidArgument("dim " + std::to_string(i) + " out of range for " + describe());
  return shape_[size_t(i)];
}

size_t Tensor::nbytes() const {
  const int64_t inner = shape_.empty() ? 1 : shape_.back();
  const int64_t outer = inner ? numel() / inner : 0;
  return size_t(outer) * row_bytes(dtype_, inner);
}

Tensor Tensor::reshape(Shape shape) const {
  check_shape(shape);
  if (shape_numel(shape) != numel()) {
    throw InvalidArgument("reshape " + describe() + " to " + shape_str(shape) + ": element count differs");
  }
  if (block_elems(dtype_) > 1 && !shape.empty() && shape.back() % block_elems(dtype_) != 0) {
    throw InvalidArgument("reshape of a block-quantized tensor must keep whole blocks per row");
  }
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::rows(int64_t begin, int64_t end) const {
  if (rank() == 0 || begin < 0 || end < begin || end > shape_[0]) {
    throw InvalidArgument("rows [" + std::to_string(begin) + ", " + std::to_string(end) + ") out of range for " +
                          describe());
  }
  Tensor t = *this;
  const size_t row_size = shape_[0] ? nbytes() / size_t(shape_[0]) : 0;
  t.data_ = static_cast<char*>(data_) + size_t(begin) * row_size;
  t.shape_[0] = end - begin;
  return t;
}

Tensor Tensor::to(Device device) const {
  Tensor t = empty(shape_, dtype_, device);
  copy_bytes(t.data_, device, data_, device_, nbytes());
  return t;
}

void Tensor::copy_from(const Tensor& src) {
  if (src.shape_ != shape_ || src.dtype_ != dtype_) {
    throw InvalidArgument("copy_from: " + src.describe() + " into " + describe());
  }
  copy_bytes(data_, device_, src.data_, src.device_, nbytes());
}

void Tensor::fill_zero() { zero_bytes(data_, device_, nbytes()); }

std::string Tensor::describe() const {
  return std::string(dtype_name(dtype_)) + shape_str(shape_) + " " + device_name(device_);
}

}  // namespace falcon
