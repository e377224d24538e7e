#include "http_reply.h"

#include <httplib.h>

#include "api_error.h"
#include "prediction_response.h"

namespace falcon::server {

void send_json(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(dump_json(body), "application/json");
}

void send_error(httplib::Response& res, const ApiError& e) {
  if (e.retry_after_s > 0) res.set_header("Retry-After", std::to_string(e.retry_after_s));
  send_json(res, e.status(), error_body(e));
}

}  // namespace falcon::server
