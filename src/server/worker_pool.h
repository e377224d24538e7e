// The engine workers of a server, one per device, and least-loaded dispatch between them.
#pragma once

#include <memory>
#include <vector>

#include "engine_worker.h"
#include "server_options.h"

namespace falcon::server {

class WorkerPool {
 public:
  explicit WorkerPool(const ServerOptions& options);
  void start();
  void stop();  // drains every worker

  // Gives the job to the ready worker with the fewest requests in flight.
  Admission submit(const std::shared_ptr<Job>& job);
  void cancel(const std::shared_ptr<Job>& job);

  const ModelInfo* info() const;  // of the first ready worker; nullptr while none is
  bool ready() const { return info() != nullptr; }
  bool loading() const;                   // some worker is still loading
  std::exception_ptr load_error() const;  // set when every worker failed to load
  std::vector<WorkerStatus> status() const;
  int max_batch() const { return max_batch_; }
  int capacity() const;

 private:
  std::vector<std::unique_ptr<EngineWorker>> workers_;
  int max_batch_;
  int max_queue_;
};

}  // namespace falcon::server
