// Fuzzes config.json parsing and validation (variant detection, field checks).
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

#include "core/error.h"
#include "model/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string dir = [] {
    std::string d = std::filesystem::temp_directory_path() / ("falcon-config-fuzz-" + std::to_string(getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  {
    std::ofstream out(dir + "/config.json", std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), std::streamsize(size));
  }
  try {
    const falcon::ModelConfig c = falcon::load_model_config(dir);
    if (c.n_heads % c.n_kv_heads != 0 || c.head_dim % 4 != 0) __builtin_trap();  // validation let it through
  } catch (const falcon::Error&) {
  }
  return 0;
}
