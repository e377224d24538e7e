// ApiServer's prediction path: queue the request on a worker, wait for it while watching
// the deadline and the connection, and answer with JSON or server-sent events.
#include <httplib.h>

#include <ctime>

#include "api_error.h"
#include "api_server.h"
#include "http_reply.h"

namespace falcon::server {

namespace {

using nlohmann::json;
using Clock = Job::Clock;

// How often a waiting handler looks at its connection and deadline.
constexpr auto kPollInterval = std::chrono::milliseconds(50);

ApiError refusal(Admission a) {
  switch (a) {
    case Admission::Full: {
      ApiError e(503, "queue_full", "the server is at capacity (--max-queue): retry shortly");
      e.retry_after_s = 1;
      return e;
    }
    case Admission::Loading: {
      ApiError e(503, "loading", "the model is still loading");
      e.retry_after_s = 5;
      return e;
    }
    case Admission::Stopping:
      return ApiError(503, "shutting_down", "the server is shutting down");
    default:
      return ApiError(503, "no_engine", "No healthy engines available.");
  }
}

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

std::string sse_event(const char* event, const json& data) {
  return std::string("event: ") + event + "\ndata: " + dump_json(data) + "\n\n";
}

// After the 200 went out an error can only travel as an event; it carries the status the
// answer would have had.
std::string error_event(const ApiError& e) {
  json body = error_body(e);
  body["status"] = e.status();
  return sse_event("error", body);
}

}  // namespace

Job::Clock::time_point ApiServer::deadline(const Job& job) const {
  if (options_.timeout_s <= 0) return Clock::time_point::max();
  return job.arrived + std::chrono::duration_cast<Clock::duration>(
                           std::chrono::duration<double>(options_.timeout_s));
}

void ApiServer::predict(PredictionInput input, const httplib::Request& req,
                        httplib::Response& res) {
  auto job = std::make_shared<Job>(std::move(input.request), input.stream);
  job->forced_tokens = std::move(input.forced_tokens);
  ResponseMeta meta;
  meta.id = new_prediction_id();
  meta.model = model_name(ready_model());
  meta.created = int64_t(std::time(nullptr));
  meta.task = job->request.task;
  meta.query = std::move(input.query);

  const Admission admission = pool_.submit(job);
  if (admission != Admission::Accepted) return send_error(res, refusal(admission));
  const ConnectionWatch watch(req.local_addr, req.local_port, req.remote_addr, req.remote_port);
  if (input.stream) return stream(job, std::move(meta), watch, res);
  answer(job, std::move(meta), watch, res);
}

void ApiServer::answer(const std::shared_ptr<Job>& job, ResponseMeta meta,
                       const ConnectionWatch& watch, httplib::Response& res) {
  const Clock::time_point until = deadline(*job);
  for (;;) {
    const JobState state = job->wait(std::min(Clock::now() + kPollInterval, until));
    if (state == JobState::Done) {
      meta.total_ms = ms_since(job->arrived);
      res.status = 200;
      res.set_content(dump_json(prediction_response(job->result(), job->stats(), meta)),
                      "application/json");
      return;
    }
    if (state == JobState::Failed) return send_error(res, to_api_error(job->error()));
    if (Clock::now() >= until && job->cancel()) {
      pool_.cancel(job);
      return send_error(res, ApiError(504, "timeout",
                                      "the request took longer than the server's limit of " +
                                          std::to_string(options_.timeout_s) + " s (--timeout-s)"));
    }
    if (watch.peer_closed() && job->cancel()) {
      // Nobody will read the answer; free the batch slot for someone who will.
      pool_.cancel(job);
      res.status = 499;  // nginx's "client closed request", for the log only
      return;
    }
  }
}

void ApiServer::stream(const std::shared_ptr<Job>& job, ResponseMeta meta,
                       const ConnectionWatch& watch, httplib::Response& res) {
  // Commit to 200 only once decoding started: a bad image or a full engine still gets its
  // own status code instead of an error event.
  const Clock::time_point until = deadline(*job);
  for (;;) {
    const JobState state = job->wait(std::min(Clock::now() + kPollInterval, until));
    if (state == JobState::Failed) return send_error(res, to_api_error(job->error()));
    if (state == JobState::Done || job->has_started()) break;
    if (Clock::now() >= until && job->cancel()) {
      pool_.cancel(job);
      return send_error(res, ApiError(504, "timeout",
                                      "the request took longer than the server's limit of " +
                                          std::to_string(options_.timeout_s) + " s (--timeout-s)"));
    }
    if (watch.peer_closed() && job->cancel()) {
      pool_.cancel(job);
      res.status = 499;
      return;
    }
  }
  res.status = 200;
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");  // nginx: pass events on as they come
  res.set_chunked_content_provider(
      "text/event-stream",
      [this, job, meta, watch, until](size_t, httplib::DataSink& sink) mutable {
        auto give_up = [&] {
          if (job->cancel()) pool_.cancel(job);
          return false;  // closes the connection
        };
        for (;;) {
          const JobState state = job->wait(std::min(Clock::now() + kPollInterval, until));
          const std::string text = job->take_text();
          if (!text.empty()) {
            const std::string event = sse_event("text", {{"text", text}});
            if (!sink.write(event.data(), event.size())) return give_up();
          }
          std::string last;
          if (state == JobState::Done) {
            meta.total_ms = ms_since(job->arrived);
            last = sse_event("result", prediction_response(job->result(), job->stats(), meta));
          } else if (state == JobState::Failed) {
            const ApiError e = to_api_error(job->error());
            last = error_event(e);
          } else if (Clock::now() >= until && job->cancel()) {
            pool_.cancel(job);
            last = error_event(ApiError(
                504, "timeout", "the request took longer than the server's limit (--timeout-s)"));
          } else if (watch.peer_closed()) {
            return give_up();
          } else {
            continue;
          }
          if (!sink.write(last.data(), last.size())) return false;
          sink.done();
          return true;
        }
      });
}

}  // namespace falcon::server
