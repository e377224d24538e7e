// The HTTP side of `falcon serve`: the reference server's REST API, the web page, CORS,
// authentication and limits, in front of a pool of engine workers.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "connection_watch.h"
#include "prediction_input.h"
#include "prediction_response.h"
#include "server_options.h"
#include "worker_pool.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace falcon::server {

class ApiError;

class ApiServer {
 public:
  explicit ApiServer(ServerOptions options);
  ~ApiServer();

  // Binds the listening socket and starts loading the model on the workers. Returns the
  // port (the chosen one for port 0). Throws InvalidArgument when the port cannot be bound.
  int start();
  // Accepts connections until stop(); returns once every accepted request is answered.
  void listen();
  // Stops accepting connections (safe from any thread); listen() then drains and returns.
  void stop();
  // After listen() returned: lets the workers finish and ends their threads.
  void stop_workers();

  WorkerPool& workers() { return pool_; }

 private:
  void install_routes();
  bool authorized(const httplib::Request& req) const;
  void health(httplib::Response& res) const;
  void status(httplib::Response& res) const;
  void models(httplib::Response& res) const;
  void predict_json(const httplib::Request& req, httplib::Response& res);
  void predict_upload(const httplib::Request& req, httplib::Response& res);
  // Queues the prediction, waits for it (or streams it), and answers.
  void predict(PredictionInput input, const httplib::Request& req, httplib::Response& res);
  void answer(const std::shared_ptr<Job>& job, ResponseMeta meta, const ConnectionWatch& watch,
              httplib::Response& res);
  void stream(const std::shared_ptr<Job>& job, ResponseMeta meta, const ConnectionWatch& watch,
              httplib::Response& res);
  Job::Clock::time_point deadline(const Job& job) const;
  const ModelInfo& ready_model() const;  // throws ApiError 503 while loading

  ServerOptions options_;
  InputPolicy policy_;
  WorkerPool pool_;
  std::unique_ptr<httplib::Server> http_;
  int listen_fd_ = -1;  // the listening socket, seen by the socket-options hook
};

}  // namespace falcon::server
