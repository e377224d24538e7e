// Error types thrown by the engine. Each message names what failed (file, tensor, field).
#pragma once

#include <stdexcept>
#include <string>

namespace falcon {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The caller passed something unusable (bad option, bad query, bad request field).
class InvalidArgument : public Error {
 public:
  using Error::Error;
};

// A file is missing, unreadable, truncated or malformed (model files, images).
class FileError : public Error {
 public:
  using Error::Error;
};

// The input is well formed but this engine does not support it.
class Unsupported : public Error {
 public:
  using Error::Error;
};

// Device or host memory could not be allocated.
class OutOfMemory : public Error {
 public:
  using Error::Error;
};

// An internal invariant broke: a bug, not a user error.
class InternalError : public Error {
 public:
  using Error::Error;
};

}  // namespace falcon
