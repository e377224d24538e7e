#include "web_assets.h"

namespace falcon::server {

const WebAsset* find_web_asset(std::string_view path) {
  if (path == "/" || path.empty()) path = "/index.html";
  for (const WebAsset& a : web_assets()) {
    if (path == a.path) return &a;
  }
  return nullptr;
}

}  // namespace falcon::server
