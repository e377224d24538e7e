#include "text/byte_level.h"

#include <array>
#include <cstdint>

#include "text/utf8.h"

namespace falcon::text {
namespace {

struct ByteLevelTables {
  std::array<char32_t, 256> to_unicode{};
  std::array<std::string, 256> to_utf8;  // to_unicode, UTF-8 encoded, for fast appends
  std::array<int16_t, 324> to_byte{};    // indexed by code point; the map's range is [0x21, 0x143]

  ByteLevelTables() {
    to_byte.fill(-1);
    char32_t next_extra = 0x100;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      to_unicode[b] = printable ? char32_t(b) : next_extra++;
      to_byte[to_unicode[b]] = static_cast<int16_t>(b);
      append_utf8(to_utf8[b], to_unicode[b]);
    }
  }
};

const ByteLevelTables& tables() {
  static const ByteLevelTables t;
  return t;
}

}  // namespace

char32_t byte_to_unicode(unsigned char byte) {
  return tables().to_unicode[byte];
}

int unicode_to_byte(char32_t cp) {
  const auto& t = tables();
  return cp < t.to_byte.size() ? t.to_byte[cp] : -1;
}

void append_byte_level(std::string& out, std::string_view bytes) {
  const auto& t = tables();
  for (const char c : bytes) out.append(t.to_utf8[static_cast<unsigned char>(c)]);
}

bool append_bytes_from_byte_level(std::string& out, std::string_view token) {
  const size_t start = out.size();
  size_t pos = 0;
  while (pos < token.size()) {
    const int b = unicode_to_byte(next_code_point(token, pos));
    if (b < 0) {
      out.resize(start);
      return false;
    }
    out.push_back(static_cast<char>(b));
  }
  return true;
}

}  // namespace falcon::text
