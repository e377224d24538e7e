// Fetching an image named by URL (image.url), allowed only with --allow-url: the server
// then makes requests on the client's behalf, so it is off unless asked for.
#pragma once

#include <cstdint>
#include <string>

namespace falcon::server {

// GETs an http:// or https:// URL, following redirects, refusing bodies over max_bytes.
// Throws ApiError (400) saying what went wrong.
std::string fetch_image_url(const std::string& url, int64_t max_bytes, double timeout_s);

}  // namespace falcon::server
