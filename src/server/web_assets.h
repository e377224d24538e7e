// The web page's files (web/), compiled into the binary by embed_web_assets.cmake.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>

namespace falcon::server {

struct WebAsset {
  const char* path;          // "/index.html", "/app.js", ...
  const char* content_type;  // "text/html; charset=utf-8", ...
  const char* data;
  size_t size;
};

std::span<const WebAsset> web_assets();

// The asset served at `path` ("/" is "/index.html"); nullptr when there is none.
const WebAsset* find_web_asset(std::string_view path);

}  // namespace falcon::server
