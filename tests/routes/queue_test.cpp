// GET/POST /queue, POST /interrupt, POST /free.
#include <gtest/gtest.h>

#include "routes/fixture.h"

namespace comfy::testing {
namespace {

std::vector<std::string> pending_ids(const TestServer& s) {
  std::vector<std::string> out;
  json q = s.get("/queue").json_body();  // kept: a range-for over a temporary's member dangles
  for (auto& item : q["queue_pending"]) out.push_back(item[1].get<std::string>());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(RouteQueue, ShowsRunningAndPendingThenClearAndDelete) {
  TestServer s;
  std::string running = s.post("/prompt", json{{"prompt", slow_prompt(500, 10)}, {"prompt_id", "run"}})
                            .json_body()["prompt_id"].get<std::string>();
  ASSERT_TRUE(wait_for([&] { return s.get("/queue").json_body()["queue_running"].size() == 1; }));
  for (int i = 0; i < 3; ++i)
    s.post("/prompt", json{{"prompt", int_prompt(i)}, {"prompt_id", "p" + std::to_string(i)}});
  for (auto& path : both("/queue")) {
    json q = s.get(path).json_body();
    ASSERT_EQ(q["queue_running"].size(), 1u);
    EXPECT_EQ(q["queue_running"][0][1], running);
    EXPECT_EQ(q["queue_pending"].size(), 3u);
  }
  EXPECT_EQ(s.get("/prompt").json_body()["exec_info"]["queue_remaining"], 4);
  HttpResult del = s.post("/api/queue", json{{"delete", {"p1", "nope"}}});
  EXPECT_EQ(del.status, 200);
  EXPECT_EQ(del.body, "");
  EXPECT_EQ(pending_ids(s), (std::vector<std::string>{"p0", "p2"}));
  EXPECT_EQ(s.post("/queue", json{{"clear", true}}).status, 200);
  EXPECT_TRUE(pending_ids(s).empty());
  EXPECT_EQ(s.get("/queue").json_body()["queue_running"].size(), 1u);  // the running one stays
  // Interrupting another id is a no-op; a global interrupt stops it.
  EXPECT_EQ(s.request("POST", "/interrupt", json{{"prompt_id", "other"}}.dump()).status, 200);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(s.get("/queue").json_body()["queue_running"].size(), 1u);
  HttpResult intr = s.request("POST", "/interrupt", "");
  EXPECT_EQ(intr.status, 200);
  EXPECT_EQ(intr.body, "");
  ASSERT_TRUE(wait_for([&] { return s.get("/queue").json_body()["queue_running"].empty(); }));
  json h = s.get("/history/run").json_body();
  ASSERT_TRUE(h.contains("run"));
  EXPECT_EQ(h["run"]["status"]["status_str"], "error");
  EXPECT_EQ(h["run"]["status"]["messages"].back()[0], "execution_interrupted");
}

TEST(RouteQueue, BadBodies) {
  TestServer s;
  EXPECT_EQ(s.request("POST", "/queue", "{").status, 500);
  EXPECT_EQ(s.request("POST", "/queue", "{}").status, 200);
  EXPECT_EQ(s.request("POST", "/free", "").status, 500);  // JSON required, as in ComfyUI
  EXPECT_EQ(s.request("POST", "/interrupt", "not json").status, 200);
  // The web UI's catch-all GET route answers first, as ComfyUI's static root does (recorded: 404).
  EXPECT_EQ(s.request("GET", "/interrupt").status, 404);
  EXPECT_EQ(s.request("DELETE", "/interrupt").status, 405);
}

TEST(RouteQueue, FreeMemoryResetsTheCache) {
  TestServer s;
  auto run = [&](const std::string& id) {
    s.post("/prompt", json{{"prompt", int_prompt(9)}, {"prompt_id", id}});
    return wait_for([&] { return s.get("/history/" + id).json_body().contains(id); });
  };
  counter().reset();
  ASSERT_TRUE(run("a"));
  ASSERT_TRUE(run("b"));
  EXPECT_EQ(counter().get("TestInt"), 1);  // cached
  for (auto& path : both("/free")) {
    HttpResult r = s.post(path, json{{"unload_models", true}, {"free_memory", true}});
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "");
  }
  // The flags are consumed by the idle worker within its wait.
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  ASSERT_TRUE(run("c"));
  EXPECT_EQ(counter().get("TestInt"), 2);
}

}  // namespace
}  // namespace comfy::testing
