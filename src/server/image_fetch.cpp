#include "image_fetch.h"

#include <httplib.h>

#include "api_error.h"

namespace falcon::server {

std::string fetch_image_url(const std::string& url, int64_t max_bytes, double timeout_s) {
  const bool http = url.rfind("http://", 0) == 0, https = url.rfind("https://", 0) == 0;
  if (!http && !https)
    throw ApiError(400, "invalid_url", "image.url must be an http:// or https:// URL");
  const size_t host_begin = url.find("//") + 2;
  const size_t path_begin = url.find('/', host_begin);
  const std::string origin = url.substr(0, path_begin);
  const std::string path = path_begin == std::string::npos ? "/" : url.substr(path_begin);
  if (origin.size() <= host_begin) throw ApiError(400, "invalid_url", "image.url has no host");

  httplib::Client client(origin);
  if (!client.is_valid())
    throw ApiError(400, "invalid_url", "image.url: cannot use '" + origin + "'");
  const auto seconds = std::chrono::duration<double>(timeout_s);
  client.set_connection_timeout(std::chrono::duration_cast<std::chrono::microseconds>(seconds));
  client.set_read_timeout(std::chrono::duration_cast<std::chrono::microseconds>(seconds));
  client.set_follow_location(true);
  std::string body;
  bool too_large = false;
  const auto res = client.Get(path, [&](const char* data, size_t n) {
    if (int64_t(body.size() + n) > max_bytes) {
      too_large = true;
      return false;
    }
    body.append(data, n);
    return true;
  });
  if (too_large) {
    throw ApiError(413, "image_too_large",
                   "image.url: the image is larger than " + std::to_string(max_bytes) + " bytes");
  }
  if (!res)
    throw ApiError(400, "url_fetch_failed", "image.url: " + httplib::to_string(res.error()));
  if (res->status != 200) {
    throw ApiError(400, "url_fetch_failed",
                   "image.url: the server answered HTTP " + std::to_string(res->status));
  }
  return body;
}

}  // namespace falcon::server
