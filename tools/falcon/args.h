// A small command-line parser: --name value, --flag, and positional arguments, with
// errors that name the option.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace falcon::cli {

class Args {
 public:
  // `flags` take no value; every other --name takes the next argument.
  Args(int argc, char** argv, int first, const std::set<std::string>& flags, const std::set<std::string>& options);

  bool has(const std::string& name) const { return values_.count(name) || flags_.count(name); }
  std::string str(const std::string& name, const std::string& fallback = "") const;
  std::string required(const std::string& name) const;
  int integer(const std::string& name, int fallback) const;
  double number(const std::string& name, double fallback) const;
  uint64_t u64(const std::string& name, uint64_t fallback) const;
  // Every value of an option given several times, in order.
  std::vector<std::string> all(const std::string& name) const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  std::map<std::string, std::string> values_;  // the last value of each option
  std::map<std::string, std::vector<std::string>> lists_;
  std::set<std::string> flags_;
  std::vector<std::string> positional_;
};

}  // namespace falcon::cli
