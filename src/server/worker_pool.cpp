#include "worker_pool.h"

#include <algorithm>
#include <numeric>

namespace falcon::server {

WorkerPool::WorkerPool(const ServerOptions& options)
    : max_batch_(options.max_batch), max_queue_(options.max_queue) {
  for (const std::string& device : options.devices) {
    EngineOptions eo;
    eo.model_dir = options.model_dir;
    eo.device = device;
    eo.weight_dtype = options.dtype;
    eo.threads = options.threads;
    eo.max_image_pixels = options.max_image_pixels;
    eo.max_batch = options.max_batch;
    if (options.image_cache >= 0) eo.image_cache_entries = options.image_cache;
    workers_.push_back(
        std::make_unique<EngineWorker>(eo, options.max_queue, options.step_delay_ms));
  }
}

void WorkerPool::start() {
  for (auto& w : workers_) w->start();
}

void WorkerPool::stop() {
  for (auto& w : workers_) w->stop();
}

Admission WorkerPool::submit(const std::shared_ptr<Job>& job) {
  std::vector<size_t> order(workers_.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return workers_[a]->in_flight() < workers_[b]->in_flight();
  });
  Admission best = Admission::Failed;
  for (size_t i : order) {
    job->worker_index = int(i);
    const Admission a = workers_[i]->submit(job);
    if (a == Admission::Accepted) return a;
    // Report the most hopeful refusal: full beats loading beats stopping beats failed.
    auto rank = [](Admission x) {
      return x == Admission::Full       ? 3
             : x == Admission::Loading  ? 2
             : x == Admission::Stopping ? 1
                                        : 0;
    };
    if (rank(a) > rank(best)) best = a;
  }
  job->worker_index = -1;
  return best;
}

void WorkerPool::cancel(const std::shared_ptr<Job>& job) {
  if (job->worker_index >= 0 && size_t(job->worker_index) < workers_.size())
    workers_[size_t(job->worker_index)]->cancel(job);
}

const ModelInfo* WorkerPool::info() const {
  for (const auto& w : workers_) {
    if (const ModelInfo* i = w->info()) return i;
  }
  return nullptr;
}

bool WorkerPool::loading() const {
  return std::any_of(workers_.begin(), workers_.end(),
                     [](const auto& w) { return !w->ready() && !w->failed(); });
}

std::exception_ptr WorkerPool::load_error() const {
  for (const auto& w : workers_) {
    if (!w->failed()) return nullptr;
  }
  return workers_.empty() ? nullptr : workers_.front()->load_error();
}

std::vector<WorkerStatus> WorkerPool::status() const {
  std::vector<WorkerStatus> out;
  for (const auto& w : workers_) out.push_back(w->status());
  return out;
}

int WorkerPool::capacity() const {
  return int(workers_.size()) * (std::max(1, max_batch_) + max_queue_);
}

}  // namespace falcon::server
