// Base64 decoding of images sent inside JSON bodies.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace falcon::server {

// Decodes standard base64 (RFC 4648 alphabet). Whitespace is skipped (clients wrap lines),
// padding may be left out, and a "data:<type>;base64," prefix (what browsers' FileReader
// gives) is accepted. Anything else that is not base64 gives nullopt.
std::optional<std::string> decode_base64(std::string_view text);

std::string encode_base64(std::string_view bytes);

}  // namespace falcon::server
