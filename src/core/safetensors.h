// safetensors files: read through mmap (zero copy), write for dumps and generated models.
// Format: u64 little-endian header length N, N bytes of JSON {name: {dtype, shape,
// data_offsets: [begin, end)}, "__metadata__": {...}}, then the data block.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace falcon {

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
  size_t begin = 0;  // offsets into the data block
  size_t end = 0;
};

class SafetensorsFile {
 public:
  // Maps the file and validates the whole header: JSON, dtypes, shapes, offsets inside the
  // file and consistent with shape x dtype. Throws FileError naming the file and tensor.
  static SafetensorsFile open(const std::string& path);
  // Parses an in-memory buffer with the same validation (used by the fuzzer and tests).
  static SafetensorsFile from_buffer(std::shared_ptr<void> owner, const void* data, size_t size,
                                     const std::string& label);

  const std::string& path() const { return path_; }
  bool contains(const std::string& name) const { return index_.count(name) != 0; }
  const TensorInfo& info(const std::string& name) const;
  std::vector<std::string> names() const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  size_t file_size() const { return size_; }

  // A CPU tensor viewing the mapped bytes (valid while any copy of this object or of the
  // tensor lives).
  Tensor view(const std::string& name) const;

 private:
  std::string path_;
  std::shared_ptr<void> mapping_;
  const unsigned char* base_ = nullptr;
  size_t size_ = 0;
  const unsigned char* data_block_ = nullptr;
  std::map<std::string, TensorInfo> index_;
  std::map<std::string, std::string> metadata_;
};

// Writes tensors (any device; copied to host) in name order. Throws FileError on I/O errors.
void write_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace falcon
