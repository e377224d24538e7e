// Errors the API answers with: an HTTP status and a JSON body saying what is wrong.
#pragma once

#include <exception>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

namespace falcon::server {

class ApiError : public std::runtime_error {
 public:
  // `code` is a stable machine-readable name ("invalid_image", "queue_full", ...).
  ApiError(int status, std::string code, const std::string& message)
      : std::runtime_error(message), status_(status), code_(std::move(code)) {}
  int status() const { return status_; }
  const std::string& code() const { return code_; }
  int retry_after_s = 0;  // sent as Retry-After when > 0

 private:
  int status_;
  std::string code_;
};

// The answer for an exception thrown while serving a request: an ApiError as it is, the
// engine's typed errors as 4xx (the request was at fault) or 5xx (the server was).
ApiError to_api_error(const std::exception_ptr& error);

// {"error": {"message", "type", "code"}, "detail": message}: the reference server's
// ErrorResponse schema, plus FastAPI's `detail` that its clients read.
nlohmann::json error_body(const ApiError& e);

}  // namespace falcon::server
