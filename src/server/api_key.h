// Bearer-token authentication (--api-key).
#pragma once

#include <string>

namespace falcon::server {

// True when `authorization` is "Bearer <key>" with exactly this key. The comparison takes
// the same time wherever the first difference lies, so it does not leak the key.
bool bearer_token_matches(const std::string& authorization, const std::string& key);

}  // namespace falcon::server
