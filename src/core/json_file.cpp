#include "core/json_file.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace falcon {

std::string read_binary_file(const std::string& path, size_t max_bytes) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) throw FileError(path + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) throw FileError(path + ": not a regular file");
  if (size_t(st.st_size) > max_bytes) {
    throw FileError(path + ": " + std::to_string(st.st_size) + " bytes is over the limit of " +
                    std::to_string(max_bytes));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FileError(path + ": cannot open");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw FileError(path + ": read failed");
  return ss.str();
}

std::string read_text_file(const std::string& path) { return read_binary_file(path, size_t(1) << 30); }

nlohmann::json read_json_file(const std::string& path) {
  const std::string text = read_text_file(path);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw FileError(path + ": invalid JSON: " + e.what());
  }
}

}  // namespace falcon
