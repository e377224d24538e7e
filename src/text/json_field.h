// Typed access to a parsed tokenizer.json that remembers where each value came from, so a
// malformed file is reported as FileError "<file>: field 'model.merges[3]': <what is wrong>".
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace falcon::text {

class JsonField {
 public:
  // `file` must outlive every JsonField derived from this one.
  JsonField(const nlohmann::json& value, const std::string& file, std::string path = "");

  const nlohmann::json& json() const { return *value_; }
  const std::string& path() const { return path_; }
  const std::string& file() const { return *file_; }

  // Member `key`; throws if this is not an object or the member is missing.
  JsonField at(std::string_view key) const;
  // Member `key`, or nullopt when it is missing or null.
  std::optional<JsonField> find(std::string_view key) const;
  // Array element; throws if this is not an array or `index` is out of range.
  JsonField at(size_t index) const;
  size_t array_size() const;  // throws if this is not an array

  std::string as_string() const;
  bool as_bool() const;
  int64_t as_int() const;
  // A token id: an integer in [0, 2^31).
  int32_t as_id() const;

  // Optional members with defaults (present but of the wrong type is still an error).
  bool bool_or(std::string_view key, bool fallback) const;
  std::string string_or(std::string_view key, const std::string& fallback) const;
  // The "type" member of a component object.
  std::string type() const { return at("type").as_string(); }

  // FileError "<file>: field '<path>': <what>".
  [[noreturn]] void fail(const std::string& what) const;
  // Unsupported, same message shape: well-formed but not implemented here.
  [[noreturn]] void unsupported(const std::string& what) const;

 private:
  const nlohmann::json* value_;
  const std::string* file_;
  std::string path_;
};

}  // namespace falcon::text
