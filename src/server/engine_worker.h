// One engine on one device, owned by one thread that runs continuous batching: new
// requests join between decode steps (Engine::submit), every step advances all of them
// (Engine::step), and cancelled ones leave (Engine::cancel). HTTP handler threads talk to
// it only through submit() and cancel().
#pragma once

#include <atomic>
#include <condition_variable>
#include <list>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "falcon/engine.h"
#include "job.h"

namespace falcon::server {

enum class Admission { Accepted, Full, Loading, Failed, Stopping };

struct WorkerStatus {
  std::string device;
  std::string state;  // "loading" | "ready" | "failed" | "stopping"
  std::string load_stage;
  double load_fraction = 0;
  std::string error;  // why loading failed
  int running = 0;    // in the decode batch
  int waiting = 0;    // admitted, not yet decoding
  int capacity = 0;   // max_batch + max_queue
  uint64_t completed = 0, failed = 0, cancelled = 0, rejected = 0;
};

class EngineWorker {
 public:
  // `max_queue` requests may wait beyond the engine's batch before submit() says Full.
  EngineWorker(EngineOptions options, int max_queue, int step_delay_ms);
  ~EngineWorker();
  EngineWorker(const EngineWorker&) = delete;
  EngineWorker& operator=(const EngineWorker&) = delete;

  void start();  // loads the engine on the worker thread, then serves
  Admission submit(const std::shared_ptr<Job>& job);
  // Drops the job from the engine if it is still there; the job must already be cancelled
  // (Job::cancel), so no answer is pending.
  void cancel(const std::shared_ptr<Job>& job);
  // Finishes every admitted request, then ends the thread; an unfinished load is abandoned.
  void stop();

  bool ready() const { return state_ == State::Ready; }
  bool failed() const { return state_ == State::Failed; }
  int in_flight() const { return in_flight_; }
  const ModelInfo* info() const { return ready() ? info_ : nullptr; }
  std::exception_ptr load_error() const;
  WorkerStatus status() const;

 private:
  enum class State { Loading, Ready, Failed, Stopped };
  struct Outstanding {
    Engine::RequestId id;
    std::shared_ptr<Job> job;
    BatchStats stats;
  };

  void run();
  void load();
  void serve();
  void admit(const std::shared_ptr<Job>& job);
  void drop(const std::shared_ptr<Job>& job);
  void on_done(Engine::RequestId id, Result* result, const std::exception_ptr& error);
  void step_engine();
  void release_slot();

  EngineOptions options_;
  const int max_queue_;
  const int step_delay_ms_;
  std::thread thread_;

  std::unique_ptr<Engine> engine_;
  const ModelInfo* info_ = nullptr;
  std::atomic<State> state_{State::Loading};
  std::atomic<bool> stopping_{false};
  std::atomic<int> in_flight_{0};  // accepted and not yet answered
  std::atomic<uint64_t> completed_{0}, failed_{0}, cancelled_{0}, rejected_{0};

  mutable std::mutex mutex_;  // guards everything below
  std::condition_variable wake_;
  std::vector<std::shared_ptr<Job>> inbox_, cancel_box_;
  std::exception_ptr load_error_;
  std::string load_stage_;
  double load_fraction_ = 0;

  // Worker thread only: admitted requests in submission order. The engine admits its queue
  // first in, first out, so the first min(size, max_batch) of these are the decode batch.
  std::list<Outstanding> outstanding_;
};

}  // namespace falcon::server
