#include "args.h"

#include <cerrno>
#include <cstdlib>

#include "falcon/error.h"

namespace falcon::cli {

Args::Args(int argc, char** argv, int first, const std::set<std::string>& flags,
           const std::set<std::string>& options) {
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) != 0 || a == "--") {
      positional_.push_back(a);
      continue;
    }
    std::string name = a.substr(2), value;
    const auto eq = name.find('=');
    const bool inline_value = eq != std::string::npos;
    if (inline_value) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    if (flags.count(name)) {
      if (inline_value) throw InvalidArgument("--" + name + " takes no value");
      flags_.insert(name);
    } else if (options.count(name)) {
      if (!inline_value) {
        if (i + 1 >= argc) throw InvalidArgument("--" + name + " needs a value");
        value = argv[++i];
      }
      values_[name] = value;
      lists_[name].push_back(value);
    } else {
      throw InvalidArgument("unknown option --" + name);
    }
  }
}

std::vector<std::string> Args::all(const std::string& name) const {
  auto it = lists_.find(name);
  return it == lists_.end() ? std::vector<std::string>{} : it->second;
}

std::string Args::str(const std::string& name, const std::string& fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second;
}

std::string Args::required(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end() || it->second.empty()) throw InvalidArgument("--" + name + " is required");
  return it->second;
}

int Args::integer(const std::string& name, int fallback) const {
  auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(it->second.c_str(), &end, 10);
  if (errno || end == it->second.c_str() || *end || v < -(1L << 30) || v > (1L << 30)) {
    throw InvalidArgument("--" + name + " expects an integer, got '" + it->second + "'");
  }
  return int(v);
}

uint64_t Args::u64(const std::string& name, uint64_t fallback) const {
  auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(it->second.c_str(), &end, 10);
  if (errno || end == it->second.c_str() || *end || it->second[0] == '-') {
    throw InvalidArgument("--" + name + " expects a non-negative integer, got '" + it->second + "'");
  }
  return v;
}

double Args::number(const std::string& name, double fallback) const {
  auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(it->second.c_str(), &end);
  if (errno || end == it->second.c_str() || *end) {
    throw InvalidArgument("--" + name + " expects a number, got '" + it->second + "'");
  }
  return v;
}

}  // namespace falcon::cli
