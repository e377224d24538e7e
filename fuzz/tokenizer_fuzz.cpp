// libFuzzer harness for the tokenizer: arbitrary bytes are encoded with each fixture tokenizer,
// and read as id lists to decode (whole and streamed). Only the typed errors of falcon/error.h
// may escape; byte-level tokenizers without a normalizer must round-trip valid UTF-8 exactly.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "text/stream_decoder.h"
#include "text/tokenizer.h"
#include "text/utf8.h"

namespace {

struct FuzzTokenizer {
  falcon::Tokenizer tokenizer;
  bool round_trips;   // decode(encode(text)) == text for every valid UTF-8 text
  bool stream_exact;  // streamed pieces always add up to the full decode
};

std::vector<std::unique_ptr<FuzzTokenizer>>& tokenizers() {
  static std::vector<std::unique_ptr<FuzzTokenizer>> all;
  return all;
}

void load_tokenizers() {
  const std::string dir = FALCON_FIXTURES_DIR;
  struct File {
    const char* path;
    bool round_trips, stream_exact;
  };
  const File files[] = {
      {"/tokenizers/bytelevel-gpt2/tokenizer.json", true, true},
      {"/tokenizers/bytelevel-falcon/tokenizer.json", true, true},
      {"/tokenizers/split-gpt2-nfc/tokenizer.json", false, true},  // NFC changes the text
      {"/tokenizers/split-llama3/tokenizer.json", true, true},
      {"/tokenizers/split-llama3-nfkc/tokenizer.json", false, true},
      // Strips a leading space; a byte-fallback run that is not UTF-8 turns into one U+FFFD per
      // byte, rewriting bytes already streamed.
      {"/tokenizers/metaspace-bytefallback/tokenizer.json", false, false},
      {"/perception-tiny/model/tokenizer.json", true, true},
  };
  for (const File& f : files) {
    tokenizers().push_back(std::make_unique<FuzzTokenizer>(
        FuzzTokenizer{falcon::Tokenizer::from_file(dir + f.path), f.round_trips, f.stream_exact}));
  }
}

[[noreturn]] void fail(const char* what, std::string_view detail) {
  std::fprintf(stderr, "tokenizer_fuzz: %s: %.*s\n", what, int(detail.size()), detail.data());
  std::abort();
}

void fuzz_encode(const FuzzTokenizer& t, std::string_view text, bool add_special_tokens) {
  std::vector<int32_t> ids;
  try {
    ids = t.tokenizer.encode(text, add_special_tokens);
  } catch (const falcon::InvalidArgument&) {
    if (!falcon::text::find_invalid_utf8(text)) fail("valid UTF-8 rejected", text);
    return;
  }
  if (falcon::text::find_invalid_utf8(text)) fail("invalid UTF-8 accepted", text);
  const int32_t vocab = t.tokenizer.vocab_size();
  for (const int32_t id : ids) {
    if (id < 0 || id >= vocab) fail("id out of range", text);
  }
  const std::string decoded = t.tokenizer.decode(ids);
  if (t.round_trips && decoded != text) fail("round trip changed the text", text);
}

void fuzz_decode(const FuzzTokenizer& t, const uint8_t* data, size_t size, bool skip_special) {
  // Two bytes per id, spanning the vocabulary and a little past it.
  const int32_t span = t.tokenizer.vocab_size() + 8;
  std::vector<int32_t> ids;
  for (size_t i = 0; i + 1 < size; i += 2)
    ids.push_back(int32_t((data[i] | (data[i + 1] << 8)) % span) - 4);
  std::string whole;
  try {
    whole = t.tokenizer.decode(ids, skip_special);
  } catch (const falcon::InvalidArgument&) {
    return;  // an id outside the vocabulary
  }
  if (falcon::text::find_invalid_utf8(whole)) fail("decode produced invalid UTF-8", whole);
  falcon::TokenStreamDecoder stream(t.tokenizer, skip_special);
  std::string streamed;
  try {
    for (const int32_t id : ids) {
      if (const auto piece = stream.step(id)) streamed += *piece;
    }
    streamed += stream.finish();
  } catch (const falcon::InvalidArgument&) {
    if (t.stream_exact) fail("stream decode refused ids the full decode accepts", whole);
    return;
  }
  if (falcon::text::find_invalid_utf8(streamed))
    fail("stream decode produced invalid UTF-8", streamed);
  if (t.stream_exact && streamed != whole) fail("streamed decode differs", whole);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  load_tokenizers();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  // First byte: which tokenizer, and the mode.
  const uint8_t selector = data[0];
  const FuzzTokenizer& t = *tokenizers()[selector % tokenizers().size()];
  const int mode = (selector / 8) % 4;
  data += 1;
  size -= 1;
  try {
    if (mode < 2) {
      fuzz_encode(t, std::string_view(reinterpret_cast<const char*>(data), size), mode == 0);
    } else {
      fuzz_decode(t, data, size, mode == 3);
    }
  } catch (const falcon::Error& e) {
    fail("unexpected error", e.what());
  }
  return 0;
}
