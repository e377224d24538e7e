#include "api_server.h"

#include <httplib.h>

#include <sys/socket.h>

#include <cstdio>

#include "api_error.h"
#include "api_key.h"
#include "http_reply.h"
#include "web_assets.h"

namespace falcon::server {

namespace {

using nlohmann::json;

// Errors cpp-httplib answers by itself (unknown route, oversized or malformed body) come
// with an empty body; give them the same JSON shape as ours.
ApiError library_error(const httplib::Request& req, const httplib::Response& res,
                       int64_t max_body) {
  switch (res.status) {
    case 404:
      return ApiError(404, "not_found", "no route for " + req.method + " " + req.path);
    case 413:
      if (req.get_header_value("Content-Type").rfind("application/x-www-form-urlencoded", 0) == 0) {
        return ApiError(413, "payload_too_large",
                        "a form-urlencoded body is limited to 8 KiB: send JSON with 'Content-Type: "
                        "application/json'");
      }
      return ApiError(413, "payload_too_large",
                      "the request body is larger than the server's limit of " +
                          std::to_string(max_body) + " bytes (--max-body-mb)");
    case 400:
      return ApiError(400, "bad_request", "malformed HTTP request or body");
    default:
      return ApiError(res.status, "http_error", "HTTP " + std::to_string(res.status));
  }
}

const char* kCorsHeaders = "Authorization, Content-Type";

}  // namespace

ApiServer::ApiServer(ServerOptions options)
    : options_(std::move(options)), pool_(options_), http_(std::make_unique<httplib::Server>()) {
  policy_.allow_url = options_.allow_url;
  policy_.allow_forced_tokens = options_.allow_forced_tokens;
  policy_.max_url_bytes = options_.max_url_bytes;
  policy_.url_timeout_s = 30;
  install_routes();
}

ApiServer::~ApiServer() {
  stop();
  stop_workers();
}

int ApiServer::start() {
  // Every admitted request holds one connection thread while it waits, so there are enough
  // for all of them plus spare ones for health checks and quick refusals.
  const int threads = options_.http_threads > 0 ? options_.http_threads : pool_.capacity() + 16;
  http_->new_task_queue = [threads] { return new httplib::ThreadPool(size_t(threads)); };
  http_->set_payload_max_length(size_t(options_.max_body_bytes));
  // cpp-httplib's default adds SO_REUSEPORT, which lets a second server bind the same port
  // and silently take half the connections; a port in use must be an error instead.
  http_->set_socket_options([this](socket_t sock) {
    const int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    listen_fd_ = int(sock);
  });
  http_->set_keep_alive_max_count(1000);
  // Headers and body go out in separate writes; with Nagle on, the body waits for the
  // client's delayed ACK (40 ms on Linux) on every answer.
  http_->set_tcp_nodelay(true);
  http_->set_read_timeout(30);
  http_->set_write_timeout(30);
  int port = options_.port;
  if (port == 0) {
    port = http_->bind_to_any_port(options_.host);
    if (port < 0) throw InvalidArgument("cannot bind " + options_.host + " (any port)");
  } else if (!http_->bind_to_port(options_.host, port)) {
    throw InvalidArgument("cannot bind " + options_.host + ":" + std::to_string(port) +
                          " (in use, or not an address of this machine)");
  }
  // cpp-httplib listens with a backlog of 5 (compiled into Debian's shared library): a burst of
  // clients connecting while the accept thread waits for a busy core overflows it, and some of
  // them lose their connection without an answer (seen as a flaky 32-client test on 2 cores).
  // listen() again on the bound socket raises the backlog.
  if (listen_fd_ >= 0 && ::listen(listen_fd_, SOMAXCONN) != 0) {
    throw InvalidArgument("cannot listen on " + options_.host + ":" + std::to_string(port));
  }
  pool_.start();
  return port;
}

void ApiServer::listen() {
  http_->listen_after_bind();
}

void ApiServer::stop() {
  http_->stop();
}

void ApiServer::stop_workers() {
  pool_.stop();
}

const ModelInfo& ApiServer::ready_model() const {
  if (const ModelInfo* info = pool_.info()) return *info;
  ApiError e = pool_.loading() ? ApiError(503, "loading", "the model is still loading")
                               : ApiError(503, "no_engine", "No healthy engines available.");
  e.retry_after_s = 5;
  throw e;
}

bool ApiServer::authorized(const httplib::Request& req) const {
  if (options_.api_key.empty()) return true;
  return bearer_token_matches(req.get_header_value("Authorization"), options_.api_key);
}

void ApiServer::install_routes() {
  httplib::Server& s = *http_;
  s.set_default_headers(
      {{"Access-Control-Allow-Origin", "*"}, {"X-Content-Type-Options", "nosniff"}});

  // Authentication before the body is read: a refused client's upload is never buffered.
  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    const bool open =
        req.method == "OPTIONS" || req.path == "/v1/health" || req.path.rfind("/v1/", 0) != 0;
    if (open || authorized(req)) return httplib::Server::HandlerResponse::Unhandled;
    res.set_header("WWW-Authenticate", "Bearer");
    // The unread body would be taken for the next request on this connection.
    res.set_header("Connection", "close");
    send_error(res, ApiError(401, "unauthorized",
                             "missing or wrong API key: send 'Authorization: Bearer <key>'"));
    return httplib::Server::HandlerResponse::Handled;
  });

  s.set_error_handler(httplib::Server::HandlerWithResponse(
      [this](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        send_error(res, library_error(req, res, options_.max_body_bytes));
        return httplib::Server::HandlerResponse::Handled;
      }));

  s.set_exception_handler([](const httplib::Request&, httplib::Response& res,
                             std::exception_ptr ep) { send_error(res, to_api_error(ep)); });

  s.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    if (!options_.access_log && res.status < 400) return;
    std::fprintf(stderr, "falcon serve: %s %s %d (%s:%d)\n", req.method.c_str(), req.path.c_str(),
                 res.status, req.remote_addr.c_str(), req.remote_port);
  });

  s.Options(".*", [](const httplib::Request&, httplib::Response& res) {
    res.status = 204;
    res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    res.set_header("Access-Control-Allow-Headers", kCorsHeaders);
    res.set_header("Access-Control-Max-Age", "600");
  });

  s.Get("/v1/health", [this](const httplib::Request&, httplib::Response& res) { health(res); });
  s.Get("/v1/status", [this](const httplib::Request&, httplib::Response& res) { status(res); });
  s.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) { models(res); });
  s.Post("/v1/predictions",
         [this](const httplib::Request& req, httplib::Response& res) { predict_json(req, res); });
  s.Post("/v1/predictions/upload",
         [this](const httplib::Request& req, httplib::Response& res) { predict_upload(req, res); });

  s.Get("/[^/]*", [](const httplib::Request& req, httplib::Response& res) {
    const WebAsset* a = find_web_asset(req.path);
    if (!a) return send_error(res, ApiError(404, "not_found", "no route for GET " + req.path));
    res.set_header("Cache-Control", "no-cache");
    res.set_content(a->data, a->size, a->content_type);
  });
}

void ApiServer::health(httplib::Response& res) const {
  const ModelInfo* info = pool_.info();
  json workers = json::array(), gpus = json::array();
  for (const WorkerStatus& w : pool_.status()) {
    json entry = {
        {"device", w.device}, {"status", w.state}, {"waiting", w.waiting}, {"running", w.running}};
    if (w.state == "loading")
      entry["load_progress"] = {{"stage", w.load_stage}, {"fraction", w.load_fraction}};
    if (!w.error.empty()) entry["error"] = w.error;
    if (w.device.rfind("cuda", 0) == 0) {
      gpus.push_back({{"gpu_id", gpus.size()},
                      {"device_name", w.device},
                      {"waiting", w.waiting},
                      {"running", w.running},
                      {"vram_allocated_gib", 0.0},
                      {"vram_reserved_gib", 0.0}});
    }
    workers.push_back(std::move(entry));
  }
  json body = {{"status", info ? "ready" : "loading"},
               {"num_gpus", gpus.size()},
               {"gpus", gpus},
               {"workers", workers},
               {"model_id", ""},
               {"supported_tasks", json::array()},
               {"features",
                {{"stream", true},
                 {"url", options_.allow_url},
                 {"forced_tokens", options_.allow_forced_tokens},
                 {"auth", !options_.api_key.empty()}}}};
  if (info) {
    body["model_id"] = options_.model_id.empty() ? default_model_id(*info) : options_.model_id;
    body["model"] = model_name(*info);
    body["variant"] = info->variant;
    body["supported_tasks"] = info->supported_tasks;
  }
  send_json(res, 200, body);
}

void ApiServer::status(httplib::Response& res) const {
  json workers = json::array();
  int index = 0;
  for (const WorkerStatus& w : pool_.status()) {
    workers.push_back({{"gpu_id", index++},
                       {"device", w.device},
                       {"status", w.state},
                       {"waiting", w.waiting},
                       {"running", w.running},
                       {"capacity", w.capacity},
                       {"completed", w.completed},
                       {"failed", w.failed},
                       {"cancelled", w.cancelled},
                       {"rejected", w.rejected}});
  }
  send_json(res, 200,
            {{"status", pool_.ready() ? "ready" : "loading"},
             {"workers", workers},
             {"max_batch", options_.max_batch},
             {"max_queue", options_.max_queue},
             {"timeout_s", options_.timeout_s}});
}

void ApiServer::models(httplib::Response& res) const {
  json data = json::array();
  if (const ModelInfo* info = pool_.info()) {
    data.push_back({{"id", model_name(*info)}, {"object", "model"}, {"owned_by", "tii"}});
  }
  send_json(res, 200, {{"object", "list"}, {"data", data}});
}

void ApiServer::predict_json(const httplib::Request& req, httplib::Response& res) {
  try {
    predict(parse_prediction_json(req.body, ready_model(), policy_), req, res);
  } catch (...) {
    send_error(res, to_api_error(std::current_exception()));
  }
}

void ApiServer::predict_upload(const httplib::Request& req, httplib::Response& res) {
  try {
    const ModelInfo& model = ready_model();
    if (!req.is_multipart_form_data()) {
      throw ApiError(422, "invalid_body",
                     "expected a multipart/form-data body with an 'image' file field");
    }
    FormFields form;
    for (const auto& [name, part] : req.files) {
      form.emplace(name, FormField{part.content, part.filename, part.content_type});
    }
    predict(parse_prediction_form(form, model, policy_), req, res);
  } catch (...) {
    send_error(res, to_api_error(std::current_exception()));
  }
}

}  // namespace falcon::server
