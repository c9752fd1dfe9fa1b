// POST /prompt and GET /prompt. Every answer recorded from the real ComfyUI
// (tests/fixtures/validation, transport-level cases included) is replayed against our server
// over HTTP, alternating /prompt and /api/prompt; prompt_id, number, timestamps and tracebacks
// are ignored.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "engine/object_info_defs.h"
#include "nodes/all.h"
#include "routes/fixture.h"

namespace comfy::testing {
namespace {

namespace fs = std::filesystem;

void drop_volatile(json& j) {
  if (j.is_object()) {
    for (const char* k : {"traceback", "prompt_id", "number", "timestamp"}) j.erase(k);
    for (auto& [k, v] : j.items()) drop_volatile(v);
  } else if (j.is_array()) {
    for (auto& v : j) drop_volatile(v);
  }
}

void sort_lists(json& body) {
  if (!body.contains("node_errors")) return;
  for (auto& [id, ne] : body["node_errors"].items()) {
    std::sort(ne["errors"].begin(), ne["errors"].end(), [](auto& a, auto& b) { return a.dump() < b.dump(); });
    std::sort(ne["dependent_outputs"].begin(), ne["dependent_outputs"].end());
  }
}

// The recorded oracle's node set: its /object_info declarations, ours where we have the node.
void oracle_registry(server::ServerOptions& options, Registry& r) {
  options.run_worker = false;  // declarations only: nothing here may run
  add_recorded_nodes(r);
}

TEST(RoutePostPrompt, ReplaysEveryRecordedAnswer) {
  TestServer s(oracle_registry);
  // The oracle's input directory held the reference pictures kept in tests/fixtures/images/inputs.
  const fs::path inputs = COMFY_TEST_DATA "/images/inputs";
  std::error_code ec;
  if (fs::is_directory(inputs, ec))
    for (auto& e : fs::directory_iterator(inputs))
      fs::copy_file(e.path(), s.env.folders->input_directory() / e.path().filename(), fs::copy_options::skip_existing, ec);
  // Its checkpoints folder held the two tiny checkpoints kept in tests/fixtures/models.
  s.env.folders->add_model_folder_path("checkpoints", COMFY_TEST_DATA "/models/checkpoints", true);
  Registry ours;
  register_all_nodes(ours);
  const std::set<std::string> custom_validated = {"LoadImage", "LoadImageMask", "LoadImageOutput"};

  int replayed = 0, i = 0;
  for (auto& path : recorded_validation_cases()) {
    json rec = load_json_file(path);
    SCOPED_TRACE(rec.value("case", path));
    bool skip = false;
    if (rec.contains("request") && rec["request"].is_object() && rec["request"].contains("prompt") &&
        rec["request"]["prompt"].is_object())
      for (auto& [id, n] : rec["request"]["prompt"].items())
        if (n.is_object() && n.contains("class_type") && n["class_type"].is_string() &&
            custom_validated.count(n["class_type"].get<std::string>()) && !ours.find(n["class_type"].get<std::string>()))
          skip = true;
    if (skip || (!fs::is_directory(inputs, ec) && rec.value("case", "").rfind("load_image", 0) == 0)) continue;
    std::string body = rec.contains("raw_body") ? rec["raw_body"].get<std::string>() : rec["request"].dump();
    std::string route = (i++ % 2) ? "/api/prompt" : "/prompt";
    HttpResult r = s.request("POST", route, body);
    ASSERT_EQ(r.status, rec["status"].get<int>()) << r.body;
    if (rec.contains("response_text")) {
      EXPECT_EQ(r.body, rec["response_text"].get<std::string>());
      EXPECT_EQ(r.header("content-type").rfind("text/plain", 0), 0u);
    } else {
      json ours_body = r.json_body(), theirs = rec["response"];
      EXPECT_EQ(r.header("content-type").rfind("application/json", 0), 0u);
      if (r.status == 200) {
        EXPECT_TRUE(ours_body["prompt_id"].is_string());
        EXPECT_TRUE(ours_body["number"].is_number());
      }
      drop_volatile(ours_body);
      drop_volatile(theirs);
      sort_lists(ours_body);
      sort_lists(theirs);
      EXPECT_EQ(nlohmann::json::parse(ours_body.dump()), nlohmann::json::parse(theirs.dump()));
    }
    ++replayed;
  }
  EXPECT_GE(replayed, 40);
  // The server is still serving after every malformed request.
  EXPECT_EQ(s.get("/prompt").status, 200);
}

TEST(RoutePostPrompt, NumberFrontPromptIdAndExtraData) {
  TestServer s([](server::ServerOptions& o, Registry& r) {
    o.run_worker = false;  // keep everything pending so /queue shows it
    register_testing_nodes(r);
  });
  json a = s.post("/prompt", json{{"prompt", int_prompt(1)}, {"client_id", "c1"}}).json_body();
  EXPECT_EQ(a["number"], 0);
  EXPECT_EQ(a["node_errors"], json::object());
  std::string id = a["prompt_id"].get<std::string>();
  EXPECT_EQ(id.size(), 36u);
  EXPECT_EQ(id[14], '4');
  // A rejected prompt still takes a number.
  EXPECT_EQ(s.post("/api/prompt", json{{"prompt", json::object()}}).status, 400);
  json b = s.post("/api/prompt", json{{"prompt", int_prompt(2)}, {"front", true}}).json_body();
  EXPECT_EQ(b["number"], -2);
  json c = s.post("/prompt", json{{"prompt", int_prompt(3)}, {"number", 7}, {"prompt_id", "mine"},
                                  {"extra_data", {{"extra_pnginfo", {{"workflow", {{"id", "wf"}}}}},
                                                  {"auth_token_comfy_org", "secret"},
                                                  {"api_key_comfy_org", "secret2"}}}})
               .json_body();
  EXPECT_EQ(c["prompt_id"], "mine");
  EXPECT_TRUE(c["number"].is_number_float());
  EXPECT_EQ(c["number"].get<double>(), 7.0);
  // A given number does not move the counter.
  json d = s.post("/prompt", json{{"prompt", int_prompt(4)}}).json_body();
  EXPECT_EQ(d["number"], 3);

  json q = s.get("/queue").json_body();
  ASSERT_EQ(q["queue_pending"].size(), 4u);
  for (auto& item : q["queue_pending"]) {
    ASSERT_EQ(item.size(), 5u);
    EXPECT_TRUE(item[3].contains("create_time"));
    EXPECT_FALSE(item[3].contains("auth_token_comfy_org"));
    EXPECT_FALSE(item[3].contains("api_key_comfy_org"));
    if (item[1] == id) EXPECT_EQ(item[3]["client_id"], "c1");
    if (item[1] == "mine") {
      EXPECT_EQ(item[3]["extra_pnginfo"]["workflow"]["id"], "wf");
      EXPECT_EQ(item[4], json::array({"2"}));
    }
  }
  for (auto& p : both("/prompt")) EXPECT_EQ(s.get(p).json_body(), (json{{"exec_info", {{"queue_remaining", 4}}}}));
}

TEST(RoutePostPrompt, PartialExecutionTargetsAndCoercion) {
  TestServer s([](server::ServerOptions& o, Registry& r) {
    o.run_worker = false;
    register_testing_nodes(r);
  });
  json prompt = int_prompt(5);
  prompt["1"]["inputs"]["value"] = "12";  // validation coerces it to 12 in the stored prompt
  prompt["3"] = node("TestOutput", {{"value", 1}});
  json r = s.post("/prompt", json{{"prompt", prompt}, {"partial_execution_targets", {"3"}}}).json_body();
  json q = s.get("/queue").json_body();
  ASSERT_EQ(q["queue_pending"].size(), 1u);
  EXPECT_EQ(q["queue_pending"][0][4], json::array({"3"}));
  // Only what the targets depend on is validated, so only that is coerced (as in ComfyUI).
  EXPECT_EQ(q["queue_pending"][0][2]["1"]["inputs"]["value"], "12");
  s.post("/prompt", json{{"prompt", prompt}});
  json queued = s.get("/queue").json_body();
  for (auto& item : queued["queue_pending"])
    if (item[4].size() == 2) EXPECT_EQ(item[2]["1"]["inputs"]["value"], 12);
  HttpResult none = s.post("/prompt", json{{"prompt", prompt}, {"partial_execution_targets", {"1"}}});
  EXPECT_EQ(none.status, 400);
  EXPECT_EQ(none.json_body()["error"]["type"], "prompt_no_outputs");
}

TEST(RoutePostPrompt, OddBodiesNeverCrash) {
  TestServer s;
  struct Case {
    std::string body;
    int status;
  };
  for (auto& c : std::vector<Case>{{"", 500},
                                   {"[]", 400},
                                   {"\"text\"", 400},
                                   {"5", 500},
                                   {"null", 500},
                                   {"{\"prompt\": null}", 500},
                                   {"{\"prompt\": 5}", 500},
                                   {"{\"prompt\": \"\"}", 400},
                                   {"{\"prompt\": {\"1\": \"abc\"}}", 400},
                                   {"{\"prompt\": {\"1\": {\"class_type\": [1]}}}", 500},
                                   {"{\"prompt\": {}, \"number\": \"x\"}", 500},
                                   {"{\"prompt\": {}, \"number\": \"2.5\"}", 400},
                                   {"\xff\xfe", 500}}) {
    SCOPED_TRACE(c.body);
    HttpResult r = s.request("POST", "/prompt", c.body);
    EXPECT_EQ(r.status, c.status) << r.body;
    if (c.status == 500) EXPECT_EQ(r.body, "500 Internal Server Error\n\nServer got itself in trouble");
    else EXPECT_NO_THROW(r.json_body());
  }
  EXPECT_EQ(s.get("/api/prompt").status, 200);
}

}  // namespace
}  // namespace comfy::testing
