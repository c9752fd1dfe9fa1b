// Sampler previews over the WebSocket (latent_preview.py + the server's binary frames): one
// picture per step after that step's progress message, type 1 (JPEG) for plain clients and type 4
// with the node's metadata for clients that announced supports_preview_metadata; none unless a
// preview method is on, and a prompt's extra_data.preview_method overrides --preview-method.
#include <gtest/gtest.h>

#include <set>

#include "nodes/all.h"
#include "routes/fixture.h"

namespace comfy::testing {
namespace {

void all_nodes(server::ServerOptions&, Registry& r) { register_all_nodes(r); }

json txt2img(int steps) {
  json p = json::parse(R"({
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "tiny_sd15.safetensors"}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red apple", "clip": ["4", 1]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["4", 1]}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 48, "batch_size": 1}},
    "3": {"class_type": "KSampler", "inputs": {"seed": 7, "steps": 1, "cfg": 5.0, "sampler_name": "euler",
          "scheduler": "normal", "denoise": 1.0, "model": ["4", 0], "positive": ["6", 0],
          "negative": ["7", 0], "latent_image": ["5", 0]}},
    "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
    "9": {"class_type": "PreviewImage", "inputs": {"images": ["8", 0]}}
  })");
  p["3"]["inputs"]["steps"] = steps;
  return p;
}

uint32_t be32(const std::string& d, size_t at) {
  return (uint32_t(uint8_t(d[at])) << 24) | (uint32_t(uint8_t(d[at + 1])) << 16) | (uint32_t(uint8_t(d[at + 2])) << 8) |
         uint32_t(uint8_t(d[at + 3]));
}

struct PreviewServer : TestServer {
  explicit PreviewServer(const std::string& method) : TestServer(all_nodes) {
    env.services.options.preview_method = method;
    env.services.options.preview_size = 64;
    env.folders->add_model_folder_path("checkpoints", COMFY_TEST_DATA "/models/checkpoints", true);
  }
};

// Queues the prompt for `client` and returns every message up to its execution_success.
std::vector<WsMessage> run(PreviewServer& s, WsClient& ws, const std::string& client, json extra = json::object()) {
  json body = {{"prompt", txt2img(3)}, {"client_id", client}};
  for (auto& [k, v] : extra.items()) body[k] = v;
  HttpResult r = s.post("/prompt", body);
  EXPECT_EQ(r.status, 200) << r.body;
  return ws.collect_until(
      [](const WsMessage& m) {
        if (m.binary) return false;
        json j = m.json_data();
        return j["type"] == "execution_success" || j["type"] == "execution_error";
      },
      std::chrono::seconds(60));
}

TEST(RoutePreview, Latent2RgbSendsOneJpegPerStepAndTheStepsDiffer) {
  PreviewServer s("latent2rgb");
  WsClient ws(s.port, "/ws?clientId=plain");
  ASSERT_TRUE(ws.next());
  auto msgs = run(s, ws, "plain");
  ASSERT_FALSE(msgs.empty());
  ASSERT_FALSE(msgs.back().binary);
  ASSERT_EQ(msgs.back().json_data()["type"], "execution_success");
  std::vector<std::string> frames;
  int progress_seen = 0;
  for (auto& m : msgs) {
    if (!m.binary) {
      json j = m.json_data();
      if (j["type"] == "progress" && j["data"]["node"] == "3") ++progress_seen;
      continue;
    }
    // Each picture follows its step's progress message.
    EXPECT_EQ(static_cast<int>(frames.size()) + 1, progress_seen);
    ASSERT_GE(m.data.size(), 12u);
    EXPECT_EQ(be32(m.data, 0), 1u);  // PREVIEW_IMAGE
    EXPECT_EQ(be32(m.data, 4), 1u);  // JPEG
    EXPECT_EQ(uint8_t(m.data[8]), 0xFF);
    EXPECT_EQ(uint8_t(m.data[9]), 0xD8);
    frames.push_back(m.data.substr(8));
  }
  ASSERT_EQ(frames.size(), 3u);
  // The tiny random model's late steps saturate every pixel; the first two steps still differ.
  EXPECT_TRUE(frames[0] != frames[1]) << "the first two steps gave the same picture";
}

TEST(RoutePreview, MetadataClientsGetTypeFourNamingTheNode) {
  PreviewServer s("auto");
  WsClient ws(s.port, "/ws?clientId=modern");
  ASSERT_TRUE(ws.next());
  ws.send_text(R"({"type": "feature_flags", "data": {"supports_preview_metadata": true}})");
  ASSERT_TRUE(ws.next_of_type("feature_flags"));
  auto msgs = run(s, ws, "modern");
  int frames = 0;
  for (auto& m : msgs) {
    if (!m.binary) continue;
    ++frames;
    ASSERT_EQ(be32(m.data, 0), 4u);  // PREVIEW_IMAGE_WITH_METADATA
    uint32_t len = be32(m.data, 4);
    json meta = json::parse(m.data.substr(8, len));
    EXPECT_EQ(meta["node_id"], "3");
    EXPECT_EQ(meta["display_node_id"], "3");
    EXPECT_EQ(meta["real_node_id"], "3");
    EXPECT_EQ(meta["image_type"], "image/jpeg");
    EXPECT_TRUE(meta["prompt_id"].is_string());
    EXPECT_EQ(uint8_t(m.data[8 + len]), 0xFF);
  }
  EXPECT_EQ(frames, 3);
}

TEST(RoutePreview, NoneByDefaultAndExtraDataOverrides) {
  PreviewServer s("none");
  WsClient ws(s.port, "/ws?clientId=c");
  ASSERT_TRUE(ws.next());
  auto count = [](const std::vector<WsMessage>& msgs) {
    int n = 0;
    for (auto& m : msgs) n += m.binary;
    return n;
  };
  EXPECT_EQ(count(run(s, ws, "c")), 0);
  // A changed seed, so the sampler runs again rather than coming from the cache.
  json body = {{"prompt", txt2img(3)}, {"client_id", "c"}, {"extra_data", {{"preview_method", "latent2rgb"}}}};
  body["prompt"]["3"]["inputs"]["seed"] = 8;
  ASSERT_EQ(s.post("/prompt", body).status, 200);
  auto msgs = ws.collect_until(
      [](const WsMessage& m) { return !m.binary && m.json_data()["type"] == "execution_success"; },
      std::chrono::seconds(60));
  EXPECT_EQ(count(msgs), 3);
}

}  // namespace
}  // namespace comfy::testing
