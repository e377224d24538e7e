#include "text/json_field.h"

#include "core/error.h"

namespace falcon::text {
namespace {

const char* type_name(const nlohmann::json& v) {
  return v.type_name();
}

}  // namespace

JsonField::JsonField(const nlohmann::json& value, const std::string& file, std::string path)
    : value_(&value), file_(&file), path_(std::move(path)) {}

void JsonField::fail(const std::string& what) const {
  throw FileError(*file_ + ": field '" + (path_.empty() ? std::string("(root)") : path_) +
                  "': " + what);
}

void JsonField::unsupported(const std::string& what) const {
  throw Unsupported(*file_ + ": field '" + (path_.empty() ? std::string("(root)") : path_) +
                    "': " + what);
}

JsonField JsonField::at(std::string_view key) const {
  if (!value_->is_object()) fail(std::string("expected an object, found ") + type_name(*value_));
  const auto it = value_->find(key);
  const std::string child = path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  if (it == value_->end()) JsonField(*value_, *file_, child).fail("missing");
  return JsonField(*it, *file_, child);
}

std::optional<JsonField> JsonField::find(std::string_view key) const {
  if (!value_->is_object()) fail(std::string("expected an object, found ") + type_name(*value_));
  const auto it = value_->find(key);
  if (it == value_->end() || it->is_null()) return std::nullopt;
  return JsonField(*it, *file_, path_.empty() ? std::string(key) : path_ + "." + std::string(key));
}

JsonField JsonField::at(size_t index) const {
  const size_t n = array_size();
  if (index >= n) fail("index " + std::to_string(index) + " out of range");
  return JsonField((*value_)[index], *file_, path_ + "[" + std::to_string(index) + "]");
}

size_t JsonField::array_size() const {
  if (!value_->is_array()) fail(std::string("expected an array, found ") + type_name(*value_));
  return value_->size();
}

std::string JsonField::as_string() const {
  if (!value_->is_string()) fail(std::string("expected a string, found ") + type_name(*value_));
  return value_->get<std::string>();
}

bool JsonField::as_bool() const {
  if (!value_->is_boolean()) fail(std::string("expected a boolean, found ") + type_name(*value_));
  return value_->get<bool>();
}

int64_t JsonField::as_int() const {
  if (value_->is_number_unsigned()) {
    const uint64_t v = value_->get<uint64_t>();
    if (v > uint64_t(INT64_MAX)) fail("integer out of range");
    return static_cast<int64_t>(v);
  }
  if (!value_->is_number_integer())
    fail(std::string("expected an integer, found ") + type_name(*value_));
  return value_->get<int64_t>();
}

int32_t JsonField::as_id() const {
  const int64_t v = as_int();
  if (v < 0 || v > INT32_MAX) fail("token id " + std::to_string(v) + " out of range");
  return static_cast<int32_t>(v);
}

bool JsonField::bool_or(std::string_view key, bool fallback) const {
  const auto f = find(key);
  return f ? f->as_bool() : fallback;
}

std::string JsonField::string_or(std::string_view key, const std::string& fallback) const {
  const auto f = find(key);
  return f ? f->as_string() : fallback;
}

}  // namespace falcon::text
