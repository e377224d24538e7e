// Continuous batching through the HTTP API: concurrent requests share decode steps and
// answer exactly as they do one by one; the queue is bounded (503); requests time out (504)
// and leave the batch when their client goes away; SIGTERM drains what is in flight.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <future>

#include "server_harness.h"

namespace falcon::test {
namespace {

// 32 different requests: every perception image, several queries and lengths, teacher-
// forced segmentation cases with boxes among them.
std::vector<json> mixed_requests() {
  const std::vector<std::string> images = {"shapes-200x120.png", "shapes-40x30-rgba.png",
                                           "shapes-90x170.jpg"};
  const std::vector<std::string> queries = {"a shape", "the red circle", "everything",
                                            "all the squares"};
  std::vector<json> out;
  for (int i = 0; i < 32; ++i) {
    json r = {
        {"image", {{"base64", b64_file(perception_image(images[size_t(i) % images.size()]))}}},
        {"query", queries[size_t(i) % queries.size()]},
        {"task", i % 2 ? "detection" : "segmentation"},
        {"min_image_size", 64},
        {"max_image_size", 128},
        {"max_tokens", 3 + i % 5}};
    if (i % 4 == 0)
      r["forced_tokens"] = {"<|coord|>", "<|size|>", "<|seg|>",
                            "<|coord|>", "<|size|>", "<|end_of_text|>"};
    out.push_back(r);
  }
  return out;
}

TEST(Batching, ParallelRequestsAnswerAsOneByOne) {
  ServerProcess server(
      {"--model", perception_model(), "--allow-forced-tokens", "--max-batch", "8"});
  const std::vector<json> requests = mixed_requests();

  std::vector<json> sequential;
  {
    auto c = server.client();
    for (const json& r : requests) {
      const auto res = post_json(c, r);
      ASSERT_TRUE(res);
      ASSERT_EQ(res->status, 200) << res->body;
      sequential.push_back(json::parse(res->body));
      EXPECT_DOUBLE_EQ(sequential.back()["avg_decode_batch_size"].get<double>(), 1.0);
    }
  }

  std::vector<std::future<json>> futures;
  for (const json& r : requests) {
    futures.push_back(std::async(std::launch::async, [&server, r] {
      auto c = server.client();
      const auto res = post_json(c, r);
      return res && res->status == 200 ? json::parse(res->body)
                                       : json{{"failed", res ? res->body : "no answer"}};
    }));
  }
  double max_batch_seen = 0;
  for (size_t i = 0; i < futures.size(); ++i) {
    const json parallel = futures[i].get();
    ASSERT_FALSE(parallel.contains("failed")) << parallel.dump();
    EXPECT_EQ(without_run_fields(parallel), without_run_fields(sequential[i])) << "request " << i;
    max_batch_seen = std::max(max_batch_seen, parallel["avg_decode_batch_size"].get<double>());
  }
  // They did share decode steps.
  EXPECT_GT(max_batch_seen, 1.5);
  auto c = server.client();
  const json s = parse_body(c.Get("/v1/status"));
  EXPECT_EQ(s["workers"][0]["completed"], 64);
  EXPECT_EQ(s["workers"][0]["running"], 0);
}

// Waits until /v1/status satisfies `pred` (or fails after 30 s).
template <class Pred>
json wait_status(ServerProcess& server, Pred pred) {
  auto c = server.client();
  json s;
  for (int i = 0; i < 600; ++i) {
    s = parse_body(c.Get("/v1/status"));
    if (s.is_object() && pred(s["workers"][0])) return s;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ADD_FAILURE() << "status never matched: " << s.dump();
  return s;
}

json slow_request(int tokens) {
  return {{"image", {{"base64", b64_file(perception_image("shapes-40x30-rgba.png"))}}},
          {"query", "a shape"},
          {"task", "detection"},
          {"max_tokens", tokens}};
}

TEST(Batching, FullQueueAnswers503WithRetryAfter) {
  // One decoding, one waiting; each step sleeps, so 20 tokens take about 2 s.
  ServerProcess server({"--model", perception_model(), "--max-batch", "1", "--max-queue", "1",
                        "--step-delay-ms", "100"});
  auto first = std::async(std::launch::async, [&] {
    auto c = server.client();
    return post_json(c, slow_request(20));
  });
  wait_status(server, [](const json& w) { return w["running"] == 1; });
  auto second = std::async(std::launch::async, [&] {
    auto c = server.client();
    return post_json(c, slow_request(20));
  });
  wait_status(server, [](const json& w) { return w["waiting"] == 1; });

  auto c = server.client();
  const auto refused = post_json(c, slow_request(2));
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 503);
  EXPECT_EQ(refused->get_header_value("Retry-After"), "1");
  EXPECT_EQ(parse_body(refused)["error"]["code"], "queue_full");

  const auto a = first.get(), b = second.get();
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->status, 200);
  EXPECT_EQ(b->status, 200);
  EXPECT_GT(json::parse(b->body)["queue_ms"].get<double>(), 1000);  // it waited for the first
  const json s = parse_body(c.Get("/v1/status"));
  EXPECT_EQ(s["workers"][0]["rejected"], 1);
  EXPECT_EQ(s["workers"][0]["completed"], 2);
}

TEST(Batching, SlowRequestTimesOutWith504AndLeavesTheBatch) {
  ServerProcess server(
      {"--model", perception_model(), "--timeout-s", "1", "--step-delay-ms", "100"});
  auto c = server.client();
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = post_json(c, slow_request(100));
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 504);
  EXPECT_EQ(parse_body(r)["error"]["code"], "timeout");
  EXPECT_LT(s, 5.0);
  wait_status(server, [](const json& w) { return w["cancelled"] == 1 && w["running"] == 0; });
  const auto ok = post_json(c, slow_request(2));  // the engine is free again
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

// Sends a request on a raw socket and closes it before the answer.
void send_and_hang_up(int port, const std::string& body, int after_ms) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(uint16_t(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  std::string req =
      "POST /v1/predictions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n";
  req += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  req += body;
  ASSERT_EQ(send(fd, req.data(), req.size(), MSG_NOSIGNAL), ssize_t(req.size()));
  std::this_thread::sleep_for(std::chrono::milliseconds(after_ms));
  close(fd);
}

TEST(Batching, ClientThatDisconnectsFreesItsSlot) {
  ServerProcess server(
      {"--model", perception_model(), "--step-delay-ms", "100", "--max-batch", "1"});
  send_and_hang_up(server.port(), slow_request(200).dump(), 500);
  // Without the cancel this would hold the only batch slot for 20 s.
  const json s = wait_status(server, [](const json& w) { return w["cancelled"] == 1; });
  EXPECT_EQ(s["workers"][0]["running"], 0);
  EXPECT_EQ(s["workers"][0]["completed"], 0);
  auto c = server.client();
  const auto ok = post_json(c, slow_request(2));
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

TEST(Batching, SigtermDrainsRequestsInFlight) {
  ServerProcess server({"--model", perception_model(), "--step-delay-ms", "50"});
  auto in_flight = std::async(std::launch::async, [&] {
    auto c = server.client();
    return post_json(c, slow_request(30));
  });
  wait_status(server, [](const json& w) { return w["running"] == 1; });
  kill(server.pid(), SIGTERM);
  const auto r = in_flight.get();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body)["output_tokens"], 30);
  const int status = server.wait_exit(30);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << server.log();
  EXPECT_NE(server.log().find("finishing the requests in flight"), std::string::npos);
  // Nobody listens any more.
  auto c = server.client(2);
  EXPECT_FALSE(c.Get("/v1/health"));
}

}  // namespace
}  // namespace falcon::test
