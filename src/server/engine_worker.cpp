#include "engine_worker.h"

#include <algorithm>
#include <cstdio>

namespace falcon::server {

namespace {

// Thrown from the load progress callback to abandon loading when the server stops.
struct LoadAborted {};

}  // namespace

EngineWorker::EngineWorker(EngineOptions options, int max_queue, int step_delay_ms)
    : options_(std::move(options)), max_queue_(max_queue), step_delay_ms_(step_delay_ms) {}

EngineWorker::~EngineWorker() {
  stop();
}

void EngineWorker::start() {
  thread_ = std::thread([this] { run(); });
}

void EngineWorker::stop() {
  {
    std::lock_guard lk(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Admission EngineWorker::submit(const std::shared_ptr<Job>& job) {
  std::lock_guard lk(mutex_);
  // Checked under the lock the worker exits under, so no job is left behind in the inbox.
  if (stopping_) return Admission::Stopping;
  if (state_ == State::Loading) return Admission::Loading;
  if (state_ != State::Ready) return Admission::Failed;
  if (in_flight_ >= std::max(1, options_.max_batch) + max_queue_) {
    ++rejected_;
    return Admission::Full;
  }
  ++in_flight_;
  job->device = options_.device;
  inbox_.push_back(job);
  wake_.notify_one();
  return Admission::Accepted;
}

void EngineWorker::cancel(const std::shared_ptr<Job>& job) {
  {
    std::lock_guard lk(mutex_);
    cancel_box_.push_back(job);
  }
  wake_.notify_one();
}

std::exception_ptr EngineWorker::load_error() const {
  std::lock_guard lk(mutex_);
  return load_error_;
}

WorkerStatus EngineWorker::status() const {
  WorkerStatus s;
  s.device = options_.device;
  const State st = state_;
  s.state = stopping_              ? "stopping"
            : st == State::Loading ? "loading"
            : st == State::Ready   ? "ready"
            : st == State::Failed  ? "failed"
                                   : "stopping";
  {
    std::lock_guard lk(mutex_);
    s.load_stage = load_stage_;
    s.load_fraction = st == State::Loading ? load_fraction_ : 1.0;
    if (load_error_) {
      try {
        std::rethrow_exception(load_error_);
      } catch (const std::exception& e) {
        s.error = e.what();
      } catch (...) {
        s.error = "model load aborted";
      }
    }
  }
  // The engine admits first in, first out, up to max_batch at a time: the first max_batch
  // requests in flight are decoding.
  s.running = std::min(int(in_flight_), std::max(1, options_.max_batch));
  s.waiting = in_flight_ - s.running;
  s.capacity = std::max(1, options_.max_batch) + max_queue_;
  s.completed = completed_;
  s.failed = failed_;
  s.cancelled = cancelled_;
  s.rejected = rejected_;
  return s;
}

void EngineWorker::run() {
  load();
  if (state_ == State::Ready) serve();
  // The engine stays alive until the worker is destroyed: info() may still be read.
}

void EngineWorker::load() {
  EngineOptions opts = options_;
  opts.progress = [this](std::string_view stage, double fraction) {
    if (stopping_) throw LoadAborted{};
    std::lock_guard lk(mutex_);
    load_stage_ = stage;
    load_fraction_ = fraction;
  };
  try {
    engine_ = Engine::load(opts);
    info_ = &engine_->info();
    std::lock_guard lk(mutex_);
    state_ = State::Ready;
  } catch (const LoadAborted&) {
    std::lock_guard lk(mutex_);
    state_ = State::Stopped;
  } catch (...) {
    std::lock_guard lk(mutex_);
    load_error_ = std::current_exception();
    state_ = State::Failed;
  }
}

void EngineWorker::serve() {
  for (;;) {
    std::vector<std::shared_ptr<Job>> incoming, cancels;
    {
      std::unique_lock lk(mutex_);
      if (outstanding_.empty()) {
        wake_.wait(lk, [&] { return !inbox_.empty() || !cancel_box_.empty() || stopping_; });
        if (stopping_ && inbox_.empty() && cancel_box_.empty()) break;
      }
      incoming.swap(inbox_);
      cancels.swap(cancel_box_);
    }
    for (const auto& job : incoming) admit(job);
    for (const auto& job : cancels) drop(job);
    if (!outstanding_.empty()) step_engine();
  }
  std::lock_guard lk(mutex_);
  state_ = State::Stopped;
}

void EngineWorker::admit(const std::shared_ptr<Job>& job) {
  if (job->cancelled()) {  // the client left or timed out while it queued
    ++cancelled_;
    release_slot();
    return;
  }
  Request request = std::move(job->request);
  for (const std::string& name : job->forced_tokens) {
    const std::optional<int32_t> id = engine_->token_id(name);
    if (!id) {
      ++failed_;
      release_slot();
      job->fail(std::make_exception_ptr(
          InvalidArgument("forced_tokens: '" + name + "' is not a token of this model")));
      return;
    }
    request.sampling.forced_tokens.push_back(*id);
  }
  if (job->stream_text) {
    // The engine calls this only while the job is outstanding, and outstanding_ holds a
    // reference until then, so the raw pointer cannot dangle.
    Job* raw = job.get();
    request.on_text = [raw](std::string_view piece) { raw->add_text(piece); };
  }
  try {
    const Engine::RequestId id =
        engine_->submit(std::move(request),
                        [this](Engine::RequestId rid, Result* result,
                               const std::exception_ptr& error) { on_done(rid, result, error); });
    outstanding_.push_back({id, job, {}});
  } catch (...) {
    ++failed_;
    release_slot();
    job->fail(std::current_exception());
  }
}

void EngineWorker::drop(const std::shared_ptr<Job>& job) {
  const auto it = std::find_if(outstanding_.begin(), outstanding_.end(),
                               [&](const Outstanding& o) { return o.job == job; });
  if (it == outstanding_.end()) return;  // finished, or never admitted
  engine_->cancel(it->id);
  outstanding_.erase(it);
  ++cancelled_;
  release_slot();
}

void EngineWorker::on_done(Engine::RequestId id, Result* result, const std::exception_ptr& error) {
  const auto it = std::find_if(outstanding_.begin(), outstanding_.end(),
                               [&](const Outstanding& o) { return o.id == id; });
  if (it == outstanding_.end()) return;
  const std::shared_ptr<Job> job = it->job;
  const BatchStats stats = it->stats;
  outstanding_.erase(it);
  // The slot is free before the handler hears of it, so /v1/status never lags an answer.
  release_slot();
  if (job->cancelled()) {
    ++cancelled_;
  } else if (result) {
    ++completed_;
    job->complete(std::move(*result), stats);
  } else {
    ++failed_;
    job->fail(error);
  }
}

void EngineWorker::step_engine() {
  // This step decodes the first `batch` outstanding requests (see outstanding_).
  const size_t batch = std::min(outstanding_.size(), size_t(std::max(1, options_.max_batch)));
  size_t k = 0;
  for (Outstanding& o : outstanding_) {
    if (k++ == batch) break;
    ++o.stats.decode_steps;
    o.stats.batch_size_sum += int64_t(batch);
  }
  try {
    engine_->step();
  } catch (...) {
    // The engine fails single requests through their callbacks; an exception escaping
    // step() leaves no telling which request caused it, so all of them fail.
    const std::exception_ptr error = std::current_exception();
    for (Outstanding& o : outstanding_) {
      engine_->cancel(o.id);
      ++failed_;
      release_slot();
      o.job->fail(error);
    }
    outstanding_.clear();
  }
  if (step_delay_ms_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(step_delay_ms_));
}

void EngineWorker::release_slot() {
  --in_flight_;
}

}  // namespace falcon::server
