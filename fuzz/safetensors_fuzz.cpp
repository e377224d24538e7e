// Fuzzes the safetensors header parser and validation with arbitrary bytes.
#include <cstdint>
#include <cstring>
#include <memory>

#include "core/error.h"
#include "core/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::shared_ptr<void> owner(new uint8_t[size ? size : 1], [](void* p) { delete[] static_cast<uint8_t*>(p); });
  std::memcpy(owner.get(), data, size);
  try {
    const falcon::SafetensorsFile f = falcon::SafetensorsFile::from_buffer(owner, owner.get(), size, "fuzz");
    for (const std::string& name : f.names()) {
      const falcon::Tensor t = f.view(name);
      volatile size_t touched = 0;
      const auto* bytes = static_cast<const uint8_t*>(t.raw());
      for (size_t i = 0; i < t.nbytes(); i += 4096) touched += bytes[i];  // every view is inside the buffer
      if (t.nbytes()) touched += bytes[t.nbytes() - 1];
    }
  } catch (const falcon::Error&) {
  }
  return 0;
}
