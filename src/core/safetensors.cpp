#include "core/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace falcon {

using json = nlohmann::json;

namespace {

// Header larger than this is not a model file (the real exports have ~100 KB headers).
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

[[noreturn]] void fail(const std::string& label, const std::string& what) {
  throw FileError(label + ": " + what);
}

DType parse_dtype(const std::string& label, const std::string& name, const std::string& s) {
  if (s == "F32") return DType::F32;
  if (s == "BF16") return DType::BF16;
  if (s == "F16") return DType::F16;
  if (s == "I64") return DType::I64;
  if (s == "I32") return DType::I32;
  if (s == "U8") return DType::U8;
  fail(label, "tensor '" + name + "' has unsupported dtype '" + s + "'");
}

}  // namespace

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path, "not a regular file");
  }
  const size_t size = size_t(st.st_size);
  if (size < 8) {
    ::close(fd);
    fail(path, "truncated: " + std::to_string(size) + " bytes, too short for a safetensors header");
  }
  void* p = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) fail(path, std::string("mmap failed: ") + std::strerror(errno));
  std::shared_ptr<void> owner(p, [size](void* q) { munmap(q, size); });
  return from_buffer(std::move(owner), p, size, path);
}

SafetensorsFile SafetensorsFile::from_buffer(std::shared_ptr<void> owner, const void* data, size_t size,
                                             const std::string& label) {
  SafetensorsFile f;
  f.path_ = label;
  f.mapping_ = std::move(owner);
  f.base_ = static_cast<const unsigned char*>(data);
  f.size_ = size;
  if (size < 8) fail(label, "truncated: too short for a safetensors header");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | f.base_[i];
  if (n > kMaxHeaderBytes || n > size - 8) {
    fail(label, "header length " + std::to_string(n) + " exceeds the file (" + std::to_string(size) +
                    " bytes): truncated or not a safetensors file");
  }
  f.data_block_ = f.base_ + 8 + n;
  const size_t data_size = size - 8 - size_t(n);
  json header;
  try {
    header = json::parse(f.base_ + 8, f.base_ + 8 + n);
  } catch (const json::exception& e) {
    fail(label, std::string("header is not valid JSON: ") + e.what());
  }
  if (!header.is_object()) fail(label, "header is not a JSON object");
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == "__metadata__") {
      if (v.is_object()) {
        for (auto m = v.begin(); m != v.end(); ++m) {
          if (m.value().is_string()) f.metadata_[m.key()] = m.value().get<std::string>();
        }
      }
      continue;
    }
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets") ||
        !v["dtype"].is_string() || !v["shape"].is_array() || !v["data_offsets"].is_array() ||
        v["data_offsets"].size() != 2) {
      fail(label, "tensor '" + name + "' has a malformed header entry");
    }
    TensorInfo info;
    info.name = name;
    info.dtype = parse_dtype(label, name, v["dtype"].get<std::string>());
    uint64_t count = 1;
    for (const json& d : v["shape"]) {
      if (!d.is_number_unsigned()) fail(label, "tensor '" + name + "' has a non-integer dimension");
      const uint64_t dim = d.get<uint64_t>();
      if (dim > (1ull << 40) || (dim && count > (std::numeric_limits<uint64_t>::max() >> 1) / dim)) {
        fail(label, "tensor '" + name + "' has an absurd shape");
      }
      count *= dim;
      info.shape.push_back(int64_t(dim));
    }
    for (const json& o : v["data_offsets"]) {
      if (!o.is_number_unsigned()) fail(label, "tensor '" + name + "' has non-integer data_offsets");
    }
    const uint64_t b = v["data_offsets"][0].get<uint64_t>();
    const uint64_t e = v["data_offsets"][1].get<uint64_t>();
    if (b > e || e > data_size) {
      fail(label, "tensor '" + name + "' data [" + std::to_string(b) + ", " + std::to_string(e) +
                      ") lies outside the data block of " + std::to_string(data_size) +
                      " bytes: the file is truncated or corrupt");
    }
    const uint64_t expect = count * row_bytes(info.dtype, 1);
    if (e - b != expect) {
      fail(label, "tensor '" + name + "' holds " + std::to_string(e - b) + " bytes but " +
                      dtype_name(info.dtype) + shape_str(info.shape) + " needs " + std::to_string(expect));
    }
    info.begin = size_t(b);
    info.end = size_t(e);
    f.index_[name] = std::move(info);
  }
  return f;
}

const TensorInfo& SafetensorsFile::info(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) fail(path_, "missing tensor '" + name + "'");
  return it->second;
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(index_.size());
  for (const auto& [k, v] : index_) out.push_back(k);
  return out;
}

Tensor SafetensorsFile::view(const std::string& name) const {
  const TensorInfo& i = info(name);
  void* p = const_cast<unsigned char*>(data_block_ + i.begin);
  // The format does not promise alignment: a tensor at an odd offset is copied into
  // aligned memory rather than read in place (misaligned loads are undefined behaviour).
  if (reinterpret_cast<uintptr_t>(p) % row_bytes(i.dtype, 1) != 0) {
    Tensor t = Tensor::empty(i.shape, i.dtype);
    std::memcpy(t.raw(), p, i.end - i.begin);
    return t;
  }
  return Tensor::wrap(p, i.shape, i.dtype, Device::CPU, mapping_);
}

void write_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  size_t offset = 0;
  std::vector<Tensor> host;
  // Largest elements first (as the reference library writes): with the 8-byte-aligned data
  // block, every tensor then starts aligned for its dtype.
  std::vector<std::pair<std::string, Tensor>> ordered(tensors.begin(), tensors.end());
  std::stable_sort(ordered.begin(), ordered.end(), [](const auto& a, const auto& b) {
    return row_bytes(a.second.dtype(), 1) > row_bytes(b.second.dtype(), 1);
  });
  for (const auto& [name, t] : ordered) {
    if (t.dtype() == DType::Q8 || t.dtype() == DType::Q4) {
      throw InvalidArgument("write_safetensors: '" + name + "' is block-quantized; safetensors has no such dtype");
    }
    Tensor h = t.on_cpu() ? t : t.to(Device::CPU);
    header[name] = {{"dtype", dtype_name(t.dtype())}, {"shape", t.shape()}, {"data_offsets", {offset, offset + h.nbytes()}}};
    offset += h.nbytes();
    host.push_back(std::move(h));
  }
  std::string text = header.dump();
  while ((text.size() + 8) % 8) text.push_back(' ');  // keep the data block 8-byte aligned
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw FileError(path + ": cannot open for writing");
  uint64_t n = text.size();
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = (unsigned char)(n >> (8 * i));
  out.write(reinterpret_cast<const char*>(len), 8);
  out.write(text.data(), std::streamsize(text.size()));
  for (const Tensor& h : host) out.write(static_cast<const char*>(h.raw()), std::streamsize(h.nbytes()));
  if (!out) throw FileError(path + ": write failed");
}

}  // namespace falcon
