// Reading JSON files with errors that name the file.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace falcon {

// Parses a JSON file; throws FileError "<path>: ..." when missing or malformed.
nlohmann::json read_json_file(const std::string& path);
// Reads a whole file into a string; throws FileError when missing/unreadable.
std::string read_text_file(const std::string& path);
// Reads a whole file as bytes; throws FileError; refuses files over max_bytes.
std::string read_binary_file(const std::string& path, size_t max_bytes = size_t(1) << 31);

}  // namespace falcon
