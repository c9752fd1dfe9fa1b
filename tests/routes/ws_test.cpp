// WebSocket /ws and /api/ws: the greeting, the feature_flags exchange, ComfyUI's message
// sequence for a prompt (spec 2.6), cached reruns, broadcasts, reconnects and binary frames.
#include <gtest/gtest.h>

#include "routes/fixture.h"
#include "server/ws.h"

namespace comfy::testing {
namespace {

std::vector<json> texts(const std::vector<WsMessage>& msgs) {
  std::vector<json> out;
  for (auto& m : msgs)
    if (!m.binary) out.push_back(m.json_data());
  return out;
}

bool is_final_executing(const WsMessage& m, const std::string& prompt_id) {
  if (m.binary) return false;
  json j = m.json_data();
  return j["type"] == "executing" && j["data"]["node"].is_null() && j["data"]["prompt_id"] == prompt_id;
}

TEST(RouteWs, GreetingWithSidAndFeatureFlags) {
  TestServer s;
  for (auto& path : both("/ws")) {
    WsClient ws(s.port, path + "?clientId=abc");
    auto hello = ws.next();
    ASSERT_TRUE(hello);
    EXPECT_EQ(hello->json_data(),
              (json{{"type", "status"}, {"data", {{"status", {{"exec_info", {{"queue_remaining", 0}}}}}, {"sid", "abc"}}}}));
    // Python's json.dumps spacing on the wire.
    EXPECT_NE(hello->data.find("\"type\": \"status\""), std::string::npos);
    ws.send_text(R"({"type": "feature_flags", "data": {"supports_preview_metadata": true}})");
    auto flags = ws.next_of_type("feature_flags");
    ASSERT_TRUE(flags);
    EXPECT_EQ((*flags)["data"], s.get("/features").json_body());
    // Only the first message is interpreted.
    ws.send_text(R"({"type": "feature_flags", "data": {}})");
    EXPECT_FALSE(ws.next(std::chrono::milliseconds(200)));
  }
  // Without a clientId: a fresh 32-hex sid.
  WsClient anon(s.port, "/ws");
  auto hello = anon.next();
  ASSERT_TRUE(hello);
  std::string sid = hello->json_data()["data"]["sid"].get<std::string>();
  EXPECT_EQ(sid.size(), 32u);
  EXPECT_EQ(sid.find_first_not_of("0123456789abcdef"), std::string::npos);
}

TEST(RouteWs, MessageSequenceOfOnePromptAndItsCachedRerun) {
  TestServer s;
  WsClient ws(s.port, "/ws?clientId=c1");
  ASSERT_TRUE(ws.next_of_type("status"));
  json r = s.post("/prompt", json{{"prompt", int_prompt(7)}, {"client_id", "c1"}}).json_body();
  std::string id = r["prompt_id"].get<std::string>();
  auto msgs = texts(ws.collect_until([&](const WsMessage& m) { return is_final_executing(m, id); }));
  std::vector<std::string> types;
  for (auto& m : msgs) types.push_back(m["type"].get<std::string>());
  std::vector<std::string> expected = {"status", "status", "execution_start", "execution_cached",
                                       "progress_state", "executing", "progress_state",  // node 1
                                       "progress_state", "executing", "executed", "progress_state",  // node 2
                                       "execution_success", "status", "executing"};
  EXPECT_EQ(types, expected);
  ASSERT_EQ(msgs.size(), expected.size());
  EXPECT_EQ(msgs[0]["data"]["status"]["exec_info"]["queue_remaining"], 1);
  EXPECT_EQ(msgs[1]["data"]["status"]["exec_info"]["queue_remaining"], 1);
  EXPECT_EQ(msgs[2]["data"]["prompt_id"], id);
  EXPECT_TRUE(msgs[2]["data"]["timestamp"].is_number_integer());
  EXPECT_EQ(msgs[3]["data"]["nodes"], json::array());
  EXPECT_EQ(msgs[5]["data"], (json{{"node", "1"}, {"display_node", "1"}, {"prompt_id", id}}));
  EXPECT_EQ(msgs[9]["data"], (json{{"node", "2"}, {"display_node", "2"}, {"output", {{"values", {7}}}}, {"prompt_id", id}}));
  EXPECT_EQ(msgs[12]["data"]["status"]["exec_info"]["queue_remaining"], 0);
  EXPECT_EQ(msgs[13]["data"], (json{{"node", nullptr}, {"prompt_id", id}}));
  // The history entry exists by the time the final message arrives.
  json h = s.get("/history/" + id).json_body();
  ASSERT_TRUE(h.contains(id));
  EXPECT_EQ(h[id]["status"]["status_str"], "success");
  EXPECT_EQ(h[id]["outputs"], (json{{"2", {{"values", {7}}}}}));

  // The same prompt again: everything cached, `executed` re-sent for the output node.
  std::string id2 = s.post("/api/prompt", json{{"prompt", int_prompt(7)}, {"client_id", "c1"}})
                        .json_body()["prompt_id"].get<std::string>();
  auto again = texts(ws.collect_until([&](const WsMessage& m) { return is_final_executing(m, id2); }));
  std::vector<std::string> t2;
  for (auto& m : again) t2.push_back(m["type"].get<std::string>());
  EXPECT_EQ(std::count(t2.begin(), t2.end(), "executing"), 1);  // only the final one
  auto cached = std::find_if(again.begin(), again.end(), [](auto& m) { return m["type"] == "execution_cached"; });
  ASSERT_NE(cached, again.end());
  EXPECT_EQ((*cached)["data"]["nodes"], json::array({"1", "2"}));
  auto executed = std::find_if(again.begin(), again.end(), [](auto& m) { return m["type"] == "executed"; });
  ASSERT_NE(executed, again.end());
  EXPECT_EQ((*executed)["data"]["output"], (json{{"values", {7}}}));
}

TEST(RouteWs, OtherClientsSeeOnlyBroadcasts) {
  TestServer s;
  WsClient mine(s.port, "/ws?clientId=me"), other(s.port, "/ws?clientId=other");
  ASSERT_TRUE(mine.next());
  ASSERT_TRUE(other.next());
  std::string id = s.post("/prompt", json{{"prompt", slow_prompt(2, 5)}, {"client_id", "me"}})
                       .json_body()["prompt_id"].get<std::string>();
  ASSERT_TRUE(mine.collect_until([&](const WsMessage& m) { return is_final_executing(m, id); }).size() > 3);
  // The other client got the status broadcasts and nothing addressed to "me".
  auto seen = texts(other.collect_until([](const WsMessage&) { return false; }, std::chrono::milliseconds(300)));
  for (auto& m : seen) EXPECT_EQ(m["type"], "status") << m.dump();
  EXPECT_GE(seen.size(), 3u);
}

TEST(RouteWs, WithoutClientIdProgressIsBroadcast) {
  TestServer s;
  WsClient watcher(s.port, "/ws");
  ASSERT_TRUE(watcher.next());
  s.post("/prompt", json{{"prompt", slow_prompt(3, 5)}});
  auto progress = watcher.next_of_type("progress");
  ASSERT_TRUE(progress);
  EXPECT_EQ((*progress)["data"]["node"], "2");
  EXPECT_EQ((*progress)["data"]["max"], 3);
}

TEST(RouteWs, ReconnectWithSameClientIdReplacesTheSocket) {
  TestServer s;
  WsClient first(s.port, "/ws?clientId=same");
  ASSERT_TRUE(first.next());
  WsClient second(s.port, "/ws?clientId=same");
  auto hello = second.next();
  ASSERT_TRUE(hello);
  EXPECT_EQ(hello->json_data()["data"]["sid"], "same");
  std::string id = s.post("/prompt", json{{"prompt", int_prompt(3)}, {"client_id", "same"}})
                       .json_body()["prompt_id"].get<std::string>();
  ASSERT_TRUE(second.next_of_type("execution_success"));
  // The replaced socket gets broadcasts only.
  auto old = texts(first.collect_until([](const WsMessage&) { return false; }, std::chrono::milliseconds(300)));
  for (auto& m : old) EXPECT_EQ(m["type"], "status");
  // Closing the old socket must not unregister the new one.
  first.close();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::string id2 = s.post("/prompt", json{{"prompt", int_prompt(4)}, {"client_id", "same"}})
                        .json_body()["prompt_id"].get<std::string>();
  EXPECT_TRUE(second.next_of_type("execution_success"));
  (void)id;
  (void)id2;
}

TEST(RouteWs, ErrorAndInterruptMessages) {
  TestServer s;
  WsClient ws(s.port, "/ws?clientId=e");
  ASSERT_TRUE(ws.next());
  json fail{{"1", node("TestInt", {{"value", 1}})},
            {"2", node("TestFail", {{"value", link("1")}, {"message", "no luck"}})},
            {"3", node("TestOutput", {{"value", link("2")}})}};
  s.post("/prompt", json{{"prompt", fail}, {"client_id", "e"}});
  auto err = ws.next_of_type("execution_error");
  ASSERT_TRUE(err);
  EXPECT_EQ((*err)["data"]["node_id"], "2");
  EXPECT_EQ((*err)["data"]["node_type"], "TestFail");
  EXPECT_EQ((*err)["data"]["exception_type"], "ValueError");
  EXPECT_EQ((*err)["data"]["exception_message"].get<std::string>().rfind("no luck", 0), 0u);

  std::string id = s.post("/prompt", json{{"prompt", slow_prompt(400, 10)}, {"client_id", "e"}})
                       .json_body()["prompt_id"].get<std::string>();
  ASSERT_TRUE(ws.next_of_type("progress"));
  EXPECT_EQ(s.request("POST", "/api/interrupt", json{{"prompt_id", id}}.dump()).status, 200);
  auto interrupted = ws.next_of_type("execution_interrupted");
  ASSERT_TRUE(interrupted);
  EXPECT_EQ((*interrupted)["data"]["prompt_id"], id);
  EXPECT_EQ((*interrupted)["data"]["node_id"], "2");
  ASSERT_TRUE(wait_for([&] { return s.get("/history/" + id).json_body().contains(id); }));
  json h = s.get("/history/" + id).json_body()[id];
  EXPECT_EQ(h["status"]["status_str"], "error");
  EXPECT_EQ(h["status"]["completed"], false);
}

TEST(RouteWs, BinaryPreviewFrames) {
  // Previews come from samplers (a later issue); the hub's framing is checked here directly.
  TestServer s;
  WsClient legacy(s.port, "/ws?clientId=legacy"), modern(s.port, "/ws?clientId=modern");
  ASSERT_TRUE(legacy.next());
  ASSERT_TRUE(modern.next());
  modern.send_text(R"({"type": "feature_flags", "data": {"supports_preview_metadata": true}})");
  ASSERT_TRUE(modern.next_of_type("feature_flags"));
  json meta{{"node_id", "3"}, {"prompt_id", "p"}, {"display_node_id", "3"}, {"parent_node_id", nullptr},
            {"real_node_id", "3"}};
  s.server->hub().send_preview("JPEGDATA", false, meta, "");  // broadcast: legacy type 1 for all
  s.server->hub().send_preview("PNGDATA", true, meta, "modern");
  auto be32 = [](const std::string& d, size_t at) {
    return (uint32_t(uint8_t(d[at])) << 24) | (uint32_t(uint8_t(d[at + 1])) << 16) | (uint32_t(uint8_t(d[at + 2])) << 8) |
           uint32_t(uint8_t(d[at + 3]));
  };
  auto a = legacy.next();
  ASSERT_TRUE(a && a->binary);
  EXPECT_EQ(be32(a->data, 0), 1u);
  EXPECT_EQ(be32(a->data, 4), 1u);
  EXPECT_EQ(a->data.substr(8), "JPEGDATA");
  auto b = modern.next();
  ASSERT_TRUE(b && b->binary);
  EXPECT_EQ(be32(b->data, 0), 1u);  // broadcasts never use type 4
  auto c = modern.next();
  ASSERT_TRUE(c && c->binary);
  EXPECT_EQ(be32(c->data, 0), 4u);
  uint32_t len = be32(c->data, 4);
  json got = json::parse(c->data.substr(8, len));
  EXPECT_EQ(got["image_type"], "image/png");
  EXPECT_EQ(got["node_id"], "3");
  EXPECT_EQ(c->data.substr(8 + len), "PNGDATA");
  EXPECT_FALSE(legacy.next(std::chrono::milliseconds(100)));
}

TEST(RouteWs, NotAnUpgradeIsRefused) {
  TestServer s;
  HttpResult r = s.get("/ws");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(s.get("/prompt").status, 200);
}

}  // namespace
}  // namespace comfy::testing
