#include "job.h"

#include <utility>

namespace falcon::server {

void Job::complete(Result&& result, const BatchStats& stats) {
  std::lock_guard lk(mutex_);
  if (state_ != JobState::Waiting) return;
  result_ = std::move(result);
  stats_ = stats;
  text_ += utf8_.flush();
  state_ = JobState::Done;
  changed_.notify_all();
}

void Job::fail(std::exception_ptr error) {
  std::lock_guard lk(mutex_);
  if (state_ != JobState::Waiting) return;
  error_ = std::move(error);
  state_ = JobState::Failed;
  changed_.notify_all();
}

void Job::add_text(std::string_view piece) {
  std::lock_guard lk(mutex_);
  started_ = true;
  text_ += utf8_.push(piece);
  text_ready_ = true;
  changed_.notify_all();
}

bool Job::cancelled() {
  std::lock_guard lk(mutex_);
  return state_ == JobState::Cancelled;
}

JobState Job::wait(Clock::time_point until) {
  std::unique_lock lk(mutex_);
  changed_.wait_until(lk, until, [&] { return state_ != JobState::Waiting || text_ready_; });
  text_ready_ = false;
  return state_;
}

bool Job::cancel() {
  std::lock_guard lk(mutex_);
  if (state_ != JobState::Waiting) return false;
  state_ = JobState::Cancelled;
  changed_.notify_all();
  return true;
}

std::string Job::take_text() {
  std::lock_guard lk(mutex_);
  return std::exchange(text_, std::string());
}

bool Job::has_started() {
  std::lock_guard lk(mutex_);
  return started_;
}

}  // namespace falcon::server
