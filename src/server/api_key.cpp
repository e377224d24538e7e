#include "api_key.h"

namespace falcon::server {

bool bearer_token_matches(const std::string& authorization, const std::string& key) {
  static const std::string kScheme = "Bearer ";
  if (authorization.size() != kScheme.size() + key.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    // The scheme is case-insensitive (RFC 7235); the key is not.
    diff |= static_cast<unsigned char>((authorization[i] | 0x20) ^ (kScheme[i] | 0x20));
  }
  for (size_t i = 0; i < key.size(); ++i) {
    diff |= static_cast<unsigned char>(authorization[kScheme.size() + i] ^ key[i]);
  }
  return diff == 0;
}

}  // namespace falcon::server
