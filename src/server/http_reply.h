// Writing JSON answers and API errors into a cpp-httplib response.
#pragma once

#include <nlohmann/json.hpp>

namespace httplib {
struct Response;
}

namespace falcon::server {

class ApiError;

void send_json(httplib::Response& res, int status, const nlohmann::json& body);
// The error's status and JSON body, and Retry-After when it has one.
void send_error(httplib::Response& res, const ApiError& e);

}  // namespace falcon::server
