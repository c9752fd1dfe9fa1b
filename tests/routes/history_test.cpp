// GET/POST /history (+ /{prompt_id}, max_items, offset) and GET /api/jobs (+ /{id}).
#include <gtest/gtest.h>

#include "routes/fixture.h"

namespace comfy::testing {
namespace {

void run_prompts(const TestServer& s, int n) {
  for (int i = 0; i < n; ++i) s.post("/prompt", json{{"prompt", int_prompt(i)}, {"prompt_id", "h" + std::to_string(i)}});
  ASSERT_TRUE(wait_for([&] { return s.get("/history").json_body().size() == static_cast<size_t>(n); }));
}

std::vector<std::string> keys(const json& j) {
  std::vector<std::string> out;
  for (auto& [k, v] : j.items()) out.push_back(k);
  return out;
}

TEST(RouteHistory, EntriesWindowsAndDeletes) {
  TestServer s;
  run_prompts(s, 4);
  for (auto& path : both("/history")) {
    json all = s.get(path).json_body();
    EXPECT_EQ(keys(all), (std::vector<std::string>{"h0", "h1", "h2", "h3"}));
    json e = all["h2"];
    EXPECT_EQ(e["prompt"].size(), 5u);
    EXPECT_EQ(e["prompt"][1], "h2");
    EXPECT_EQ(e["outputs"], (json{{"2", {{"values", {2}}}}}));
    EXPECT_EQ(e["status"]["status_str"], "success");
    EXPECT_EQ(e["status"]["completed"], true);
    EXPECT_EQ(e["status"]["messages"][0][0], "execution_start");
    EXPECT_EQ(e["meta"]["2"]["node_id"], "2");
  }
  EXPECT_EQ(keys(s.get("/history?max_items=2").json_body()), (std::vector<std::string>{"h2", "h3"}));
  EXPECT_EQ(keys(s.get("/api/history?max_items=2&offset=1").json_body()), (std::vector<std::string>{"h1", "h2"}));
  EXPECT_EQ(keys(s.get("/history?offset=3").json_body()), (std::vector<std::string>{"h3"}));
  EXPECT_EQ(s.get("/history?max_items=abc").status, 500);
  EXPECT_EQ(keys(s.get("/api/history/h1").json_body()), (std::vector<std::string>{"h1"}));
  EXPECT_EQ(s.get("/history/unknown").json_body(), json::object());
  EXPECT_EQ(s.get("/history/").status, 404);

  HttpResult d = s.post("/history", json{{"delete", {"h0", "missing"}}});
  EXPECT_EQ(d.status, 200);
  EXPECT_EQ(d.body, "");
  EXPECT_EQ(keys(s.get("/history").json_body()), (std::vector<std::string>{"h1", "h2", "h3"}));
  EXPECT_EQ(s.post("/api/history", json{{"clear", true}}).status, 200);
  EXPECT_EQ(s.get("/history").json_body(), json::object());
}

TEST(RouteJobs, ListFilterSortAndOne) {
  TestServer s;
  run_prompts(s, 3);
  json fail{{"1", node("TestInt", {{"value", 1}})},
            {"2", node("TestFail", {{"value", link("1")}, {"message", "boom"}})},
            {"3", node("TestOutput", {{"value", link("2")}})}};
  s.post("/prompt", json{{"prompt", fail}, {"prompt_id", "bad"}});
  ASSERT_TRUE(wait_for([&] { return s.get("/history/bad").json_body().contains("bad"); }));

  for (auto& path : {std::string("/api/jobs"), std::string("/api/api/jobs")}) {
    json r = s.get(path).json_body();
    EXPECT_EQ(r["pagination"], (json{{"offset", 0}, {"limit", nullptr}, {"total", 4}, {"has_more", false}}));
    ASSERT_EQ(r["jobs"].size(), 4u);
    EXPECT_EQ(r["jobs"][0]["id"], "bad");  // newest first
    EXPECT_EQ(r["jobs"][0]["status"], "failed");
    EXPECT_EQ(r["jobs"][0]["execution_error"]["node_id"], "2");
    EXPECT_EQ(r["jobs"][3]["status"], "completed");
    EXPECT_EQ(r["jobs"][3]["outputs_count"], 0);  // {"values": [0]} holds no dict items
  }
  json failed = s.get("/api/jobs?status=failed").json_body();
  EXPECT_EQ(failed["jobs"].size(), 1u);
  json page = s.get("/api/jobs?sort_order=asc&limit=2&offset=1").json_body();
  EXPECT_EQ(page["jobs"].size(), 2u);
  EXPECT_EQ(page["jobs"][0]["id"], "h1");
  EXPECT_EQ(page["pagination"]["has_more"], true);

  struct Bad {
    std::string query, error;
  };
  for (auto& b : std::vector<Bad>{
           {"status=done", "Invalid status value(s): done. Valid values: pending, in_progress, completed, failed"},
           {"sort_by=name", "sort_by must be 'created_at' or 'execution_duration'"},
           {"sort_order=up", "sort_order must be 'asc' or 'desc'"},
           {"limit=0", "limit must be a positive integer"},
           {"limit=x", "limit must be an integer"},
           {"offset=x", "offset must be an integer"}}) {
    HttpResult r = s.get("/api/jobs?" + b.query);
    EXPECT_EQ(r.status, 400) << b.query;
    EXPECT_EQ(r.json_body(), (json{{"error", b.error}}));
  }
  json one = s.get("/api/jobs/h1").json_body();
  EXPECT_EQ(one["id"], "h1");
  EXPECT_EQ(one["outputs"], (json{{"2", {{"values", {1}}}}}));
  EXPECT_TRUE(one["workflow"]["prompt"].contains("1"));
  HttpResult missing = s.get("/api/jobs/nope");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.json_body(), (json{{"error", "Job not found"}}));
}

}  // namespace
}  // namespace comfy::testing
