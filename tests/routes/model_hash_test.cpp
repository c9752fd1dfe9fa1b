// POST /models/hash and GET /models/hash/{id}: a file hashed on the server's worker thread, with
// "model_hash" progress messages over the WebSocket, the digest checked against coreutils'
// sha256sum, and the result kept in the hash cache.
#include <gtest/gtest.h>

#include <fstream>
#include <random>

#include "routes/fixture.h"
#include "support/shell.h"

namespace comfy {
namespace {

using namespace comfy::testing;
namespace fs = std::filesystem;

// An 8 MiB file of pseudo-random bytes in models/checkpoints.
fs::path make_model(const TestServer& s, const std::string& name, std::size_t bytes = 8u << 20) {
  const fs::path dir = s.env.dir / "models" / "checkpoints";
  fs::create_directories(dir);
  std::mt19937 rng(42);
  std::string data(bytes, '\0');
  for (auto& c : data) c = static_cast<char>(rng() & 0xFF);
  std::ofstream(dir / name, std::ios::binary).write(data.data(), static_cast<std::streamsize>(data.size()));
  return dir / name;
}

std::string sha256sum(const fs::path& p) { return run_shell("sha256sum " + q(p)).out.substr(0, 64); }

TEST(ModelHashRoute, HashesInTheBackgroundWithProgressOverTheWebSocket) {
  TestServer s;
  const fs::path file = make_model(s, "big.safetensors");
  const std::string want = sha256sum(file);
  ASSERT_EQ(want.size(), 64u);
  WsClient ws(s.port, "/ws?clientId=h1");
  ASSERT_TRUE(ws.next_of_type("status"));
  HttpResult r = s.post("/api/models/hash", json{{"folder", "checkpoints"}, {"filename", "big.safetensors"}});
  ASSERT_EQ(r.status, 200) << r.body;
  const json job = r.json_body();
  const std::string id = job["id"];
  EXPECT_EQ(job["folder"], "checkpoints");
  EXPECT_EQ(job["filename"], "big.safetensors");
  EXPECT_EQ(job["progress"]["total"], 8u << 20);

  std::vector<json> progress;
  json done;
  auto msgs = ws.collect_until([&](const WsMessage& m) {
    if (m.binary) return false;
    json j = m.json_data();
    if (j["type"] != "model_hash" || j["data"]["id"] != id) return false;
    progress.push_back(j["data"]);
    if (j["data"]["status"] == "done" || j["data"]["status"] == "error") {
      done = j["data"];
      return true;
    }
    return false;
  }, std::chrono::seconds(30));
  ASSERT_TRUE(done.is_object()) << "no final model_hash message";
  EXPECT_EQ(done["status"], "done") << done.dump();
  EXPECT_EQ(done["sha256"], want);
  EXPECT_EQ(done["autov2"], want.substr(0, 10));
  EXPECT_EQ(done["progress"]["bytes"], 8u << 20);
  EXPECT_EQ(done["filename"], "big.safetensors");
  // Running messages with growing byte counts below the total (1 MiB chunks: several of them).
  uint64_t last = 0;
  int running = 0;
  for (const json& m : progress) {
    if (m["status"] != "running") continue;
    const uint64_t b = m["progress"]["bytes"];
    EXPECT_GE(b, last);
    EXPECT_LT(b, 8u << 20);
    if (b > 0) ++running;
    last = b;
  }
  EXPECT_GE(running, 3) << "too few progress messages";

  for (const std::string& path : both("/models/hash/" + id)) {
    HttpResult g = s.get(path);
    ASSERT_EQ(g.status, 200) << path;
    EXPECT_EQ(g.json_body()["sha256"], want);
    EXPECT_EQ(g.json_body()["status"], "done");
  }

  // A second request answers from the hash cache (size and mtime unchanged); FOLDER/NAME works too.
  std::string id2 = s.post("/models/hash", json{{"path", "checkpoints/big.safetensors"}}).json_body()["id"];
  ASSERT_TRUE(wait_for([&] { return s.get("/models/hash/" + id2).json_body()["status"] == "done"; }));
  json second = s.get("/models/hash/" + id2).json_body();
  EXPECT_EQ(second["sha256"], want);
  EXPECT_EQ(second["cached"], true);
  EXPECT_TRUE(fs::exists(s.env.dir / "user" / "__comfycpp" / "model_hashes.sqlite"));
}

TEST(ModelHashRoute, BadRequestsAreRefused) {
  TestServer s;
  make_model(s, "a.safetensors", 16);
  EXPECT_EQ(s.post("/models/hash", json{{"folder", "checkpoints"}}).status, 400);
  EXPECT_EQ(s.post("/models/hash", json{{"path", "nofolder"}}).status, 400);
  EXPECT_EQ(s.post("/models/hash", json{{"folder", "nope"}, {"filename", "a.safetensors"}}).status, 404);
  EXPECT_EQ(s.post("/models/hash", json{{"folder", "checkpoints"}, {"filename", "missing.safetensors"}}).status, 404);
  EXPECT_EQ(s.post("/models/hash", json{{"folder", "checkpoints"}, {"filename", "../../user/x"}}).status, 404);
  EXPECT_EQ(s.request("POST", "/models/hash", "{not json").status, 400);
  EXPECT_EQ(s.get("/models/hash/unknown-id").status, 404);
}

}  // namespace
}  // namespace comfy
