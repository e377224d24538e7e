#include "api_error.h"

#include "falcon/error.h"

namespace falcon::server {

namespace {

const char* error_type(int status) {
  switch (status) {
    case 401:
      return "authentication_error";
    case 404:
      return "not_found_error";
    case 413:
      return "request_too_large";
    case 503:
      return "overloaded_error";
    case 504:
      return "timeout_error";
    default:
      return status >= 500 ? "server_error" : "invalid_request_error";
  }
}

}  // namespace

ApiError to_api_error(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const ApiError& e) {
    return e;
  } catch (const InvalidArgument& e) {
    return ApiError(400, "invalid_request", e.what());
  } catch (const FileError& e) {
    // Within a request the only files are the request's own image.
    return ApiError(400, "invalid_image", e.what());
  } catch (const Unsupported& e) {
    return ApiError(400, "unsupported", e.what());
  } catch (const OutOfMemory& e) {
    ApiError out(503, "out_of_memory", e.what());
    out.retry_after_s = 5;
    return out;
  } catch (const std::bad_alloc&) {
    ApiError out(503, "out_of_memory", "out of host memory");
    out.retry_after_s = 5;
    return out;
  } catch (const std::exception& e) {
    return ApiError(500, "internal_error", std::string("internal error: ") + e.what());
  } catch (...) {
    return ApiError(500, "internal_error", "internal error");
  }
}

nlohmann::json error_body(const ApiError& e) {
  return {{"error", {{"message", e.what()}, {"type", error_type(e.status())}, {"code", e.code()}}},
          {"detail", e.what()}};
}

}  // namespace falcon::server
