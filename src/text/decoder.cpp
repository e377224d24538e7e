#include "text/decoder.h"

#include "core/error.h"
#include "text/byte_level.h"
#include "text/pattern.h"
#include "text/pre_tokenizer.h"
#include "text/utf8.h"

namespace falcon::text {
namespace {

constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";

// Maps every byte-level character back to its byte and joins all tokens into one string; a token
// with a character outside the map contributes its own UTF-8 bytes (added tokens such as
// "<|image|>"). Bytes that are not UTF-8 become U+FFFD.
class ByteLevelDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const std::string& t : tokens) {
      if (!append_bytes_from_byte_level(bytes, t)) bytes.append(t);
    }
    tokens.assign(1, utf8_lossy(bytes));
  }
};

class MetaspaceDecoder final : public Decoder {
 public:
  MetaspaceDecoder(char32_t replacement, PrependScheme scheme) : scheme_(scheme) {
    append_utf8(replacement_, replacement);
  }
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string out;
      const std::string& t = tokens[i];
      size_t pos = 0;
      while (pos < t.size()) {
        if (t.compare(pos, replacement_.size(), replacement_) == 0) {
          // The first token's replacement is the one the encoder prepended: dropped.
          if (i != 0 || scheme_ == PrependScheme::Never) out.push_back(' ');
          pos += replacement_.size();
        } else {
          out.push_back(t[pos++]);
        }
      }
      tokens[i] = std::move(out);
    }
  }

 private:
  std::string replacement_;
  PrependScheme scheme_;
};

// Runs of <0xNN> tokens become the bytes they name: one string if those bytes are UTF-8, else
// one U+FFFD per byte.
class ByteFallbackDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    out.reserve(tokens.size());
    std::string pending;
    const auto flush = [&] {
      if (pending.empty()) return;
      if (!find_invalid_utf8(pending)) {
        out.push_back(pending);
      } else {
        for (size_t k = 0; k < pending.size(); ++k) out.emplace_back(kReplacementChar);
      }
      pending.clear();
    };
    for (std::string& t : tokens) {
      if (const int b = parse_byte_token(t); b >= 0) {
        pending.push_back(static_cast<char>(b));
      } else {
        flush();
        out.push_back(std::move(t));
      }
    }
    flush();
    tokens = std::move(out);
  }

 private:
  static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  // "<0xNN>" -> NN, else -1. Like Rust's from_str_radix, a leading '+' is accepted.
  static int parse_byte_token(const std::string& t) {
    if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
    const int hi = hex_value(t[3]), lo = hex_value(t[4]);
    if (t[3] == '+' && lo >= 0) return lo;
    if (hi < 0 || lo < 0) return -1;
    return hi * 16 + lo;
  }
};

class FuseDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string joined;
    for (const std::string& t : tokens) joined.append(t);
    tokens.assign(1, std::move(joined));
  }
};

// Removes up to `start` leading and `stop` trailing copies of `content` from every token.
class StripDecoder final : public Decoder {
 public:
  StripDecoder(char32_t content, size_t start, size_t stop) : start_(start), stop_(stop) {
    append_utf8(content_, content);
  }
  void decode_chain(std::vector<std::string>& tokens) const override {
    const size_t w = content_.size();
    for (std::string& t : tokens) {
      size_t begin = 0, end = t.size();
      for (size_t k = 0; k < start_ && end - begin >= w && t.compare(begin, w, content_) == 0; ++k)
        begin += w;
      for (size_t k = 0; k < stop_ && end - begin >= w && t.compare(end - w, w, content_) == 0; ++k)
        end -= w;
      t = t.substr(begin, end - begin);
    }
  }

 private:
  std::string content_;
  size_t start_, stop_;
};

class ReplaceDecoder final : public Decoder {
 public:
  ReplaceDecoder(Pattern pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::string& t : tokens) {
      const auto matches = pattern_.find_all(t);
      if (matches.empty()) continue;
      std::string out;
      size_t prev = 0;
      for (const Match& m : matches) {
        out.append(t, prev, m.begin - prev);
        out.append(content_);
        prev = m.end;
      }
      out.append(t, prev, std::string::npos);
      t = std::move(out);
    }
  }

 private:
  Pattern pattern_;
  std::string content_;
};

// Classic BPE end-of-word suffix: a space between words, nothing after the last token.
class BpeSuffixDecoder final : public Decoder {
 public:
  explicit BpeSuffixDecoder(std::string suffix) : suffix_(std::move(suffix)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    if (suffix_.empty()) return;
    for (size_t i = 0; i < tokens.size(); ++i) {
      const std::string replacement = i + 1 == tokens.size() ? "" : " ";
      std::string& t = tokens[i];
      std::string out;
      size_t prev = 0, at = 0;
      while ((at = t.find(suffix_, prev)) != std::string::npos) {
        out.append(t, prev, at - prev).append(replacement);
        prev = at + suffix_.size();
      }
      out.append(t, prev, std::string::npos);
      t = std::move(out);
    }
  }

 private:
  std::string suffix_;
};

class SequenceDecoder final : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> steps)
      : steps_(std::move(steps)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& step : steps_) step->decode_chain(tokens);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> steps_;
};

char32_t single_char(const JsonField& field) {
  const std::string s = field.as_string();
  if (s.empty() || count_code_points(s) != 1) field.fail("expected exactly one character");
  size_t pos = 0;
  return next_code_point(s, pos);
}

size_t count_field(const JsonField& config, const char* key) {
  const auto f = config.find(key);
  if (!f) return 0;
  const int64_t v = f->as_int();
  if (v < 0) f->fail("expected a non-negative count");
  return static_cast<size_t>(v);
}

}  // namespace

std::unique_ptr<Decoder> parse_decoder(const JsonField& config) {
  const std::string type = config.type();
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "Metaspace") {
    return std::make_unique<MetaspaceDecoder>(single_char(config.at("replacement")),
                                              parse_prepend_scheme(config));
  }
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Strip") {
    return std::make_unique<StripDecoder>(single_char(config.at("content")),
                                          count_field(config, "start"),
                                          count_field(config, "stop"));
  }
  if (type == "Replace") {
    return std::make_unique<ReplaceDecoder>(parse_pattern(config.at("pattern")),
                                            config.at("content").as_string());
  }
  if (type == "BPEDecoder")
    return std::make_unique<BpeSuffixDecoder>(config.string_or("suffix", "</w>"));
  if (type == "Sequence") {
    const JsonField list = config.at("decoders");
    std::vector<std::unique_ptr<Decoder>> steps;
    for (size_t i = 0; i < list.array_size(); ++i) steps.push_back(parse_decoder(list.at(i)));
    return std::make_unique<SequenceDecoder>(std::move(steps));
  }
  config.at("type").unsupported("unsupported decoder '" + type + "'");
}

}  // namespace falcon::text
