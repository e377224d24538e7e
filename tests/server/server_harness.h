// Test harness for the server: starts `falcon serve` (the real binary from the build) on a
// free loopback port, talks to it over HTTP, and stops it with SIGTERM, expecting a clean
// exit (which, in a sanitizer build, also means no leak reports).
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>

#include "server/base64.h"
#include "test_support.h"

namespace falcon::test {

using nlohmann::json;

inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline std::string perception_model() {
  return fixtures_dir() + "/perception-tiny/model";
}
inline std::string ocr_model() {
  return fixtures_dir() + "/ocr-tiny/model";
}
inline std::string perception_image(const std::string& name) {
  return fixtures_dir() + "/perception-tiny/images/" + name;
}
inline std::string ocr_image(const std::string& name) {
  return fixtures_dir() + "/ocr-tiny/images/" + name;
}
inline std::string falcon_binary() {
  return bin_dir() + "/falcon";
}

inline std::string b64_file(const std::string& path) {
  return server::encode_base64(read_file(path));
}

class ServerProcess {
 public:
  // `args` follow `falcon serve`; --port 0 is added, and the port read from its first line.
  explicit ServerProcess(std::vector<std::string> args, bool wait_ready = true) {
    static int counter = 0;
    log_path_ =
        std::filesystem::temp_directory_path() / ("falcon_serve_test_" + std::to_string(getpid()) +
                                                  "_" + std::to_string(counter++) + ".log");
    int out[2];
    if (pipe(out) != 0) throw std::runtime_error("pipe failed");
    std::vector<std::string> argv_s = {falcon_binary(), "serve", "--port", "0"};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      const int err = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(err, STDERR_FILENO);
      close(out[0]);
      std::vector<char*> argv;
      for (auto& a : argv_s) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(out[1]);
    out_fd_ = out[0];
    port_ = read_port();
    if (port_ > 0 && wait_ready) this->wait_ready();
  }

  ~ServerProcess() {
    if (pid_ > 0) {
      const int status = stop();
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
          << "server did not exit cleanly (status " << status << "); log:\n"
          << log();
    }
    if (out_fd_ >= 0) close(out_fd_);
    std::error_code ec;
    std::filesystem::remove(log_path_, ec);
  }

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string log() const { return read_file(log_path_); }

  httplib::Client client(int timeout_s = 120) const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(timeout_s, 0);
    c.set_write_timeout(timeout_s, 0);
    c.set_connection_timeout(5, 0);
    return c;
  }

  void wait_ready() {
    auto c = client();
    for (int i = 0; i < 600; ++i) {
      if (auto r = c.Get("/v1/health");
          r && r->status == 200 && json::parse(r->body)["status"] == "ready")
        return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "server not ready; log:\n" << log();
  }

  // SIGTERM, then the wait status (SIGKILL after `timeout_s`).
  int stop(int timeout_s = 60) {
    if (pid_ <= 0) return status_;
    kill(pid_, SIGTERM);
    status_ = wait_exit(timeout_s);
    return status_;
  }

  // Waits for the process to exit by itself; the wait status, or -1 on timeout.
  int wait_exit(int timeout_s) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    while (std::chrono::steady_clock::now() < until) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        status_ = status;
        return status;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, &status_, 0);
    pid_ = -1;
    ADD_FAILURE() << "server did not exit within " << timeout_s << " s; log:\n" << log();
    return -1;
  }

 private:
  int read_port() {
    std::string line;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < until) {
      pollfd p{out_fd_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char c;
      const ssize_t n = read(out_fd_, &c, 1);
      if (n <= 0) break;  // exited before listening
      if (c != '\n') {
        line += c;
        continue;
      }
      const auto at = line.find("http://");
      if (at == std::string::npos) {
        line.clear();
        continue;
      }
      const auto colon = line.find(':', at + 7);
      return std::stoi(line.substr(colon + 1));
    }
    return -1;
  }

  pid_t pid_ = -1;
  int out_fd_ = -1;
  int port_ = -1;
  int status_ = -1;
  std::filesystem::path log_path_;
};

inline json parse_body(const httplib::Result& r) {
  if (!r) return json();
  return json::parse(r->body, nullptr, false);
}

inline httplib::Result post_json(httplib::Client& c, const json& body) {
  return c.Post("/v1/predictions", body.dump(), "application/json");
}

// The fields that may differ between two runs of one request.
inline json without_run_fields(json j) {
  for (const char* k :
       {"id", "created", "inference_time_ms", "queue_ms", "total_time_ms", "tokenize_time_ms",
        "prefill_time_ms", "decode_time_ms", "finalize_time_ms", "num_decode_steps",
        "avg_decode_batch_size", "timings_ms", "cached_tokens", "prefill_batch"}) {
    j.erase(k);
  }
  return j;
}

// COCO compressed RLE counts -> runs (pycocotools' rleFrString).
inline std::vector<int64_t> rle_runs(const std::string& s) {
  std::vector<int64_t> runs;
  size_t p = 0;
  while (p < s.size()) {
    int64_t x = 0;
    int k = 0;
    bool more = true;
    while (more) {
      const int c = s[p] - 48;
      x |= int64_t(c & 0x1f) << (5 * k);
      more = c & 0x20;
      ++p;
      ++k;
      if (!more && (c & 0x10)) x |= int64_t(-1) << (5 * k);
    }
    if (runs.size() > 2) x += runs[runs.size() - 2];
    runs.push_back(x);
  }
  return runs;
}

inline int64_t rle_area(const std::string& counts) {
  int64_t area = 0;
  const auto runs = rle_runs(counts);
  for (size_t i = 1; i < runs.size(); i += 2) area += runs[i];
  return area;
}

// `falcon ARGS...` with output discarded; its exit status.
inline int run_falcon(const std::vector<std::string>& args) {
  std::string cmd = "'";
  cmd += falcon_binary();
  cmd += "'";
  for (const auto& a : args) {
    cmd += " '";
    cmd += a;
    cmd += "'";
  }
  cmd += " >/dev/null 2>&1";
  const int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Runs the CLI on the same request; its JSON.
inline json run_cli(const std::string& command, const std::vector<std::string>& args) {
  // Arguments are quoted for the shell; none of the tests' values hold a quote.
  std::string cmd = "'";
  cmd += falcon_binary();
  cmd += "' ";
  cmd += command;
  cmd += " --quiet";
  for (const auto& a : args) {
    cmd += " '";
    cmd += a;
    cmd += "'";
  }
  cmd += " 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return json();
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return json::parse(out, nullptr, false);
}

}  // namespace falcon::test
