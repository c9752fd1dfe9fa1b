// /system_stats, /features, /extensions, /embeddings, /models, the /internal routes, unknown
// routes, the origin check, CORS, the body limit.
#include <gtest/gtest.h>

#include <fstream>

#include "routes/fixture.h"

namespace comfy::testing {
namespace {

namespace fs = std::filesystem;

void touch(const fs::path& p, const std::string& data = "x") {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << data;
}

TEST(RouteSystem, StatsAndFeatures) {
  TestServer s;
  for (auto& path : both("/system_stats")) {
    json st = s.get(path).json_body();
    EXPECT_EQ(st["system"]["os"], "linux");
    EXPECT_GT(st["system"]["ram_total"].get<int64_t>(), 0);
    EXPECT_GT(st["system"]["ram_free"].get<int64_t>(), 0);
    EXPECT_EQ(st["system"]["comfyui_version"], "0.8.0");
    ASSERT_EQ(st["devices"].size(), 1u);
    // Every key the recorded ComfyUI answer has.
    static const json ref = json::parse(R"({"system": {"os": "", "ram_total": 0, "ram_free": 0, "comfyui_version": "",
      "required_frontend_version": "", "installed_templates_version": null, "required_templates_version": "",
      "python_version": "", "pytorch_version": "", "embedded_python": false, "argv": []},
      "devices": [{"name": "", "type": "", "index": null, "vram_total": 0, "vram_free": 0, "torch_vram_total": 0,
      "torch_vram_free": 0}]})");
    for (auto& [k, v] : ref["system"].items()) EXPECT_TRUE(st["system"].contains(k)) << k;
    for (auto& [k, v] : ref["devices"][0].items()) EXPECT_TRUE(st["devices"][0].contains(k)) << k;
  }
  for (auto& path : both("/features")) {
    HttpResult r = s.get(path);
    EXPECT_EQ(r.json_body(), json::parse(R"({"supports_preview_metadata": true, "max_upload_size": 104857600,
                                            "extension": {"manager": {"supports_v4": true}}})"));
    // Recorded from ComfyUI 0.8.0: argparse leaves the default (100) an int, so the product is an
    // int; a value given with --max-upload-size is a float (BodyLimit below).
    EXPECT_NE(r.body.find("\"max_upload_size\": 104857600,"), std::string::npos) << r.body;
  }
  EXPECT_EQ(s.get("/extensions").json_body(), json::array());
  EXPECT_EQ(s.get("/api/extensions").json_body(), json::array());
}

TEST(RouteSystem, ModelsAndEmbeddings) {
  TestServer s;
  touch(s.env.dir / "models" / "checkpoints" / "b.safetensors");
  touch(s.env.dir / "models" / "checkpoints" / "sub" / "a.ckpt");
  touch(s.env.dir / "models" / "checkpoints" / "notes.txt");
  touch(s.env.dir / "models" / "embeddings" / "neg.pt");
  for (auto& path : both("/models")) {
    json m = s.get(path).json_body();
    ASSERT_TRUE(m.is_array());
    EXPECT_EQ(m[0], "checkpoints");
    EXPECT_EQ(std::count(m.begin(), m.end(), "clip"), 0);
  }
  EXPECT_EQ(s.get("/models/checkpoints").json_body(), json::parse(R"(["b.safetensors", "sub/a.ckpt"])"));
  EXPECT_EQ(s.get("/api/models/clip").status, 404);  // aliases are not keys
  EXPECT_EQ(s.get("/models/nope").status, 404);
  EXPECT_EQ(s.get("/embeddings").json_body(), json::parse(R"(["neg"])"));
  json exp = s.get("/experiment/models").json_body();
  for (auto& e : exp) EXPECT_NE(e["name"], "configs");
  json files = s.get("/api/experiment/models/checkpoints").json_body();
  EXPECT_EQ(files.size(), 2u);
  EXPECT_EQ(s.get("/experiment/models/nope").status, 404);
}

TEST(RouteSystem, InternalRoutes) {
  TestServer s;
  touch(s.env.folders->output_directory() / "old.png");
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  touch(s.env.folders->output_directory() / "new.png");
  touch(s.env.folders->output_directory() / ".hidden");
  touch(s.env.folders->output_directory() / "dir" / "inner.png");
  EXPECT_EQ(s.get("/internal/files/output").json_body(), json::parse(R"(["new.png", "old.png"])"));
  HttpResult bad = s.get("/internal/files/models");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.json_body(), (json{{"error", "Invalid directory type"}}));
  EXPECT_EQ(s.get("/api/internal/files/output").status, 404);  // /internal is not under /api
  json fp = s.get("/internal/folder_paths").json_body();
  EXPECT_TRUE(fp.contains("checkpoints"));
  EXPECT_TRUE(fp["checkpoints"].is_array());
  EXPECT_TRUE(s.get("/internal/logs").json_body().is_string());
  json raw = s.get("/internal/logs/raw").json_body();
  EXPECT_TRUE(raw["entries"].is_array());
  EXPECT_TRUE(raw["size"].contains("cols"));
  EXPECT_EQ(s.request("PATCH", "/internal/logs/subscribe", R"({"clientId": "x", "enabled": true})").status, 200);
}

TEST(RouteSystem, UnknownRoutesAndMethods) {
  TestServer s;
  HttpResult r = s.get("/nope");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, "404: Not Found");
  EXPECT_EQ(s.get("/prompt/").status, 404);
  EXPECT_EQ(s.request("DELETE", "/prompt").status, 405);
  HttpResult root = s.get("/");
  EXPECT_EQ(root.status, 404);  // the web UI is a later issue
  EXPECT_NE(root.body.find("web UI is not built yet"), std::string::npos);
  // /ws without the upgrade: aiohttp's answer, recorded from ComfyUI 0.8.0.
  HttpResult ws = s.get("/ws");
  EXPECT_EQ(ws.status, 400);
  EXPECT_EQ(ws.body, "No WebSocket UPGRADE hdr: None\n Can \"Upgrade\" only to \"WebSocket\".");
  EXPECT_EQ(s.request("GET", "/api/ws", "", {{"Upgrade", "foo"}}).body,
            "No WebSocket UPGRADE hdr: foo\n Can \"Upgrade\" only to \"WebSocket\".");
  // Unknown query parameters (clients append ?clientId=) are accepted everywhere.
  EXPECT_EQ(s.get("/queue?clientId=abc").status, 200);
  EXPECT_EQ(s.get("/api/object_info/TestInt?clientId=abc").json_body().size(), 1u);
}

TEST(RouteSystem, OriginCheckOnLoopback) {
  TestServer s;
  std::string host = "127.0.0.1:" + std::to_string(s.port);
  auto post = [&](const std::string& origin) {
    return s.request("POST", "/prompt", json{{"prompt", int_prompt(1)}}.dump(), {{"Host", host}, {"Origin", origin}});
  };
  HttpResult evil = post("http://evil.example");
  EXPECT_EQ(evil.status, 403);
  EXPECT_EQ(evil.body, "");
  EXPECT_EQ(post("http://" + host).status, 200);
  EXPECT_EQ(post("http://127.0.0.1").status, 200);  // no port in Origin: hostnames compared
  EXPECT_EQ(s.request("GET", "/queue", "", {{"Host", "localhost:" + std::to_string(s.port)}, {"Origin", "http://evil.example:1"}})
                .status,
            403);
  EXPECT_EQ(s.request("OPTIONS", "/prompt", "", {{"Host", host}}).status, 200);
  // A non-loopback Host is never checked (ComfyUI's rule).
  EXPECT_EQ(s.request("GET", "/queue", "", {{"Host", "8.8.8.8:80"}, {"Origin", "http://evil.example"}}).status, 200);
}

TEST(RouteSystem, OriginCheckVariants) {
  TestServer s;
  std::string port = std::to_string(s.port);
  auto status = [&](const std::string& host, const std::string& origin, const std::string& path = "/queue") {
    return s.request("GET", path, "", {{"Host", host}, {"Origin", origin}}).status;
  };
  std::string v4 = "127.0.0.1:" + port;
  EXPECT_EQ(status(v4, "http://127.0.0.1:1"), 403);                      // same host, other port
  EXPECT_EQ(status(v4, "HTTP://127.0.0.1:" + port), 200);                // scheme and case do not matter
  EXPECT_EQ(status(v4, "https://127.0.0.1:" + port + "/some/page"), 200);  // the path is ignored
  EXPECT_EQ(status(v4, "http://127.0.0.1:" + port + "@evil.example"), 403);  // userinfo is not the host
  EXPECT_EQ(status(v4, "http://evil.example:" + port), 403);
  EXPECT_EQ(status(v4, "http://127.0.0.2:" + port), 403);                // another loopback address is another origin
  EXPECT_EQ(status(v4, "null"), 200);                                    // no host in Origin: not compared (ComfyUI)
  EXPECT_EQ(status("LOCALHOST:" + port, "http://localhost:" + port), 200);
  EXPECT_EQ(status("localhost:" + port, "http://127.0.0.1:" + port), 403);  // names are compared, not addresses
  EXPECT_EQ(status("[::1]:" + port, "http://[::1]:" + port), 200);
  EXPECT_EQ(status("[::1]:" + port, "http://evil.example:" + port), 403);
  EXPECT_EQ(status("127.1:" + port, "http://evil.example"), 403);        // inet_aton forms are loopback too
  // Every route and method is guarded, the WebSocket upgrade included.
  EXPECT_EQ(s.request("POST", "/interrupt", "", {{"Host", v4}, {"Origin", "http://evil.example"}}).status, 403);
  EXPECT_EQ(s.request("POST", "/upload/image", "", {{"Host", v4}, {"Origin", "http://evil.example"}}).status, 403);
  EXPECT_EQ(s.request("GET", "/ws?clientId=x", "",
                      {{"Host", v4},
                       {"Origin", "http://evil.example"},
                       {"Connection", "Upgrade"},
                       {"Upgrade", "websocket"},
                       {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="},
                       {"Sec-WebSocket-Version", "13"}})
                .status,
            403);
  EXPECT_EQ(status(v4, "http://evil.example", "/no/such/route"), 403);
  EXPECT_EQ(status(v4, "http://evil.example", "/internal/logs"), 403);
}

TEST(RouteSystem, CorsHeaderInsteadOfOriginCheck) {
  TestServer s([](server::ServerOptions& o, Registry& r) {
    o.cors_origin = "*";
    register_testing_nodes(r);
  });
  HttpResult r = s.request("GET", "/queue", "", {{"Host", "127.0.0.1"}, {"Origin", "http://evil.example"}});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("access-control-allow-origin"), "*");
  EXPECT_EQ(r.header("access-control-allow-methods"), "POST, GET, DELETE, PUT, OPTIONS, PATCH");
  EXPECT_EQ(s.request("OPTIONS", "/anything").status, 200);
}

TEST(RouteSystem, BodyLimit) {
  TestServer s([](server::ServerOptions& o, Registry& r) {
    o.max_upload_size_mb = 0.001;  // 1048 bytes
    o.max_upload_size_given = true;
    register_testing_nodes(r);
  });
  EXPECT_EQ(s.get("/features").json_body()["max_upload_size"], 1048.576);
  HttpResult big = s.request("POST", "/prompt", std::string(5000, ' '));
  EXPECT_EQ(big.status, 413);
  EXPECT_EQ(s.get("/prompt").status, 200);
}

TEST(RouteSystem, MalformedHttpKeepsServing) {
  TestServer s;
  // A raw garbage request line: 400, then the server still answers.
  EXPECT_EQ(s.request("GET", "/view?filename=%00").status, 400);
  EXPECT_EQ(s.get("/prompt").status, 200);
}

}  // namespace
}  // namespace comfy::testing
