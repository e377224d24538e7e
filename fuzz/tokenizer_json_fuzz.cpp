// libFuzzer harness for loading tokenizer.json: arbitrary (mutated) JSON must either load or fail
// with one of the typed errors; a loaded tokenizer must then encode and decode a sample safely.
// Seed it with the fixture files: `tokenizer_json_fuzz CORPUS tests/fixtures/tokenizers/*/`.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/error.h"
#include "text/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  try {
    const falcon::Tokenizer tok = falcon::Tokenizer::from_json(json, "fuzz.json");
    const std::vector<int32_t> ids =
        tok.encode("Hello <|image|> world 123 \xC3\xA9\xE6\x9D\xB1 \n\t!", true);
    try {
      (void)tok.decode(ids);
    } catch (const falcon::InvalidArgument&) {
      // A post-processor template may name ids outside the vocabulary.
    }
  } catch (const falcon::Error&) {
    // FileError / Unsupported / InvalidArgument are the expected outcomes for bad files.
  }
  return 0;
}
