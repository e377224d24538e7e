// --api-key, --max-image-pixels, --allow-url, and what the server refuses at startup.
#include "server_harness.h"

namespace falcon::test {
namespace {

json small_request(int max_tokens = 2) {
  return {{"image", {{"base64", b64_file(perception_image("shapes-40x30-rgba.png"))}}},
          {"query", "a shape"},
          {"task", "detection"},
          {"max_tokens", max_tokens}};
}

TEST(ApiKey, RequiredOnTheApiButNotOnHealthOrThePage) {
  ServerProcess server({"--model", perception_model(), "--api-key", "s3cret-key"});
  auto c = server.client();
  const auto none = c.Post("/v1/predictions", small_request().dump(), "application/json");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 401);
  EXPECT_EQ(none->get_header_value("WWW-Authenticate"), "Bearer");
  EXPECT_EQ(parse_body(none)["error"]["code"], "unauthorized");

  httplib::Headers wrong = {{"Authorization", "Bearer s3cret-kex"}};
  const auto w = c.Post("/v1/predictions", wrong, small_request().dump(), "application/json");
  ASSERT_TRUE(w);
  EXPECT_EQ(w->status, 401);
  for (const char* path : {"/v1/status", "/v1/models"}) {
    const auto r = c.Get(path);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 401) << path;
  }

  httplib::Headers right = {{"Authorization", "Bearer s3cret-key"}};
  const auto ok = c.Post("/v1/predictions", right, small_request().dump(), "application/json");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200) << ok->body;
  const auto models = c.Get("/v1/models", right);
  ASSERT_TRUE(models);
  EXPECT_EQ(models->status, 200);

  // Probes and the page stay open; the page asks for the key (features.auth).
  const auto health = c.Get("/v1/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(parse_body(health)["features"]["auth"], true);
  const auto page = c.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  const auto preflight = c.Options("/v1/predictions");
  ASSERT_TRUE(preflight);
  EXPECT_EQ(preflight->status, 204);
}

TEST(ImagePixelLimit, RefusesLargerImages) {
  ServerProcess server({"--model", perception_model(), "--max-image-pixels", "10000"});
  auto c = server.client();
  json big = small_request();
  big["image"]["base64"] = b64_file(perception_image("shapes-200x120.png"));  // 24000 pixels
  const auto r = post_json(c, big);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_FALSE(parse_body(r)["error"]["message"].get<std::string>().empty());
  const auto ok = post_json(c, small_request());  // 40x30 = 1200 pixels
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200) << ok->body;
}

TEST(ImageUrl, FetchedOnlyWhenAllowed) {
  // An image host on loopback, in this process.
  httplib::Server images;
  const std::string png = read_file(perception_image("shapes-40x30-rgba.png"));
  images.Get("/shape.png", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(png, "image/png");
  });
  images.Get("/big.png", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(std::string(3 << 20, 'x'), "image/png");
  });
  const int port = images.bind_to_any_port("127.0.0.1");
  std::thread host([&] { images.listen_after_bind(); });

  {
    ServerProcess server({"--model", perception_model(), "--allow-url", "--max-url-mb", "1"});
    auto c = server.client();
    EXPECT_EQ(parse_body(c.Get("/v1/health"))["features"]["url"], true);
    const std::string base = "http://127.0.0.1:" + std::to_string(port);
    json by_url = small_request();
    by_url["image"] = {{"url", base + "/shape.png"}};
    const json a = parse_body(post_json(c, by_url));
    const json b = parse_body(post_json(c, small_request()));
    ASSERT_TRUE(a.contains("tokens")) << a.dump();
    EXPECT_EQ(without_run_fields(a), without_run_fields(b));

    for (const auto& [url, status, code] : std::vector<std::tuple<std::string, int, std::string>>{
             {base + "/missing.png", 400, "url_fetch_failed"},
             {base + "/big.png", 413, "image_too_large"},
             {"file:///etc/passwd", 400, "invalid_url"},
             {"http://127.0.0.1:1/x.png", 400, "url_fetch_failed"}}) {
      by_url["image"] = {{"url", url}};
      const auto r = post_json(c, by_url);
      ASSERT_TRUE(r) << url;
      EXPECT_EQ(r->status, status) << url << ": " << r->body;
      EXPECT_EQ(parse_body(r)["error"]["code"], code) << url;
    }
  }
  images.stop();
  host.join();
}

TEST(Startup, ModelThatDoesNotLoadExitsWithTheCliStatus) {
  ServerProcess server({"--model", "/nonexistent/model"}, /*wait_ready=*/false);
  const int status = server.wait_exit(60);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 3);  // FileError, as `falcon detect` reports it
  EXPECT_NE(server.log().find("/nonexistent/model"), std::string::npos) << server.log();
}

TEST(Startup, PortInUseAndBadOptions) {
  ServerProcess first({"--model", perception_model()});
  EXPECT_EQ(
      run_falcon({"serve", "--model", perception_model(), "--port", std::to_string(first.port())}),
      2);
  EXPECT_EQ(run_falcon({"serve", "--model", "x", "--max-batch", "0"}), 2);
  EXPECT_EQ(run_falcon({"serve", "--model", "x", "--bogus"}), 2);
  EXPECT_EQ(run_falcon({"serve", "--help"}), 0);
}

}  // namespace
}  // namespace falcon::test
