// One prediction request on its way through the server: the HTTP handler thread that owns
// the connection waits on it, the engine worker thread fills it in.
#pragma once

#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <string>
#include <vector>

#include "falcon/engine.h"
#include "utf8.h"

namespace falcon::server {

enum class JobState { Waiting, Done, Failed, Cancelled };

// Decode batching seen by one request (the reference reports the same numbers).
struct BatchStats {
  int decode_steps = 0;
  int64_t batch_size_sum = 0;  // requests decoded together, summed over its steps
};

class Job {
 public:
  using Clock = std::chrono::steady_clock;

  Job(Request req, bool stream) : request(std::move(req)), stream_text(stream) {}

  Request request;  // moved into the engine when the worker submits it
  std::vector<std::string>
      forced_tokens;       // names or ids, mapped by the worker (it owns the engine)
  const bool stream_text;  // collect on_text pieces for server-sent events
  const Clock::time_point arrived = Clock::now();
  std::string device;     // the device of the worker that took it
  int worker_index = -1;  // which worker of the pool took it

  // --- worker thread ---
  void complete(Result&& result, const BatchStats& stats);
  void fail(std::exception_ptr error);
  void add_text(std::string_view piece);
  bool cancelled();

  // --- handler thread ---
  // Waits until the job leaves Waiting, new text arrives (when streaming), or `until`.
  JobState wait(Clock::time_point until);
  // Waiting -> Cancelled; false when the job already finished.
  bool cancel();
  std::string take_text();  // streamed text not yet taken (whole UTF-8 characters)
  bool has_started();       // the first token was decoded
  // Valid once the state is Done / Failed.
  Result& result() { return result_; }
  const BatchStats& stats() const { return stats_; }
  std::exception_ptr error() const { return error_; }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  JobState state_ = JobState::Waiting;
  Result result_;
  BatchStats stats_;
  std::exception_ptr error_;
  Utf8Stream utf8_;
  std::string text_;
  bool started_ = false;
  bool text_ready_ = false;
};

}  // namespace falcon::server
