// Engine behaviours, each on a small graph of test-only nodes (see testing_nodes/).
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "engine/harness.h"
#include "models/folder_paths.h"

namespace comfy::testing {
namespace {

json add_chain(int a, int b) {
  return json{{"1", node("TestInt", {{"value", a}})},
              {"2", node("TestInt", {{"value", b}})},
              {"3", node("TestAdd", {{"a", link("1")}, {"b", link("2")}})},
              {"4", node("TestOutput", {{"value", link("3")}})}};
}

TEST(Executor, RunsGraphAndReportsUiOutput) {
  Engine e;
  ExecutionResult r = e.run(add_chain(2, 3));
  ASSERT_TRUE(r.success);
  EXPECT_EQ(r.outputs, json::parse(R"J({"4": {"values": [5]}})J"));
  EXPECT_EQ(r.meta["4"], json::parse(R"J({"node_id": "4", "display_node": "4", "parent_node": null, "real_node_id": "4"})J"));
  std::vector<std::string> kinds;
  for (auto& m : r.messages) kinds.push_back(m[0].get<std::string>());
  EXPECT_EQ(kinds, (std::vector<std::string>{"execution_start", "execution_cached", "execution_success"}));
  auto executed = e.sink.of_type("executed");
  ASSERT_EQ(executed.size(), 1u);
  EXPECT_EQ(executed[0].data["output"], json::parse(R"J({"values": [5]})J"));
  EXPECT_EQ(executed[0].sid, "client");
}

TEST(Executor, FullCache) {
  Engine e;
  e.run(add_chain(2, 3));
  ExecutionResult r = e.run(add_chain(2, 3));
  ASSERT_TRUE(r.success);
  EXPECT_EQ(counter().get("TestAdd"), 1);
  EXPECT_EQ(counter().get("TestOutput"), 1);
  EXPECT_EQ(r.messages[1][1]["nodes"], json::parse(R"J(["1", "2", "3", "4"])J"));
  // A cached output node still reports its UI, and no node is "executing".
  EXPECT_EQ(r.outputs, json::parse(R"J({"4": {"values": [5]}})J"));
  EXPECT_TRUE(e.executing_order().empty());
  EXPECT_EQ(e.sink.of_type("executed").size(), 1u);
}

TEST(Executor, PartialCache) {
  Engine e;
  e.run(add_chain(2, 3));
  ExecutionResult r = e.run(add_chain(2, 4));
  ASSERT_TRUE(r.success);
  EXPECT_EQ(r.outputs["4"]["values"][0], 6);
  EXPECT_EQ(counter().get("TestInt"), 3);  // node 1 is cached, node 2 changed
  EXPECT_EQ(counter().get("TestAdd"), 2);
  EXPECT_EQ(r.messages[1][1]["nodes"], json::parse(R"J(["1"])J"));
}

TEST(Executor, IdenticalSubgraphsShareResults) {
  Engine e;
  json p = add_chain(2, 3);
  p["11"] = node("TestInt", {{"value", 2}});
  p["12"] = node("TestInt", {{"value", 3}});
  p["13"] = node("TestAdd", {{"a", link("11")}, {"b", link("12")}});
  p["14"] = node("TestOutput", {{"value", link("13")}});
  ExecutionResult r = e.run(p);
  ASSERT_TRUE(r.success);
  EXPECT_EQ(counter().get("TestAdd"), 1);
  EXPECT_EQ(r.outputs["14"]["values"][0], 5);
}

TEST(Executor, ClassicCacheKeepsOnlyWhatTheCurrentPromptUses) {
  Engine e;
  e.run(add_chain(2, 3));
  e.run(add_chain(7, 7));
  e.run(add_chain(2, 3));
  EXPECT_EQ(counter().get("TestAdd"), 3);
}

TEST(Executor, LruCacheKeepsEarlierPrompts) {
  Engine e(CachePolicy::lru, 100);
  e.run(add_chain(2, 3));
  e.run(add_chain(7, 7));
  e.run(add_chain(2, 3));
  EXPECT_EQ(counter().get("TestAdd"), 2);
}

TEST(Executor, NoCacheRunsEverythingEveryTime) {
  Engine e(CachePolicy::none);
  e.run(add_chain(2, 3));
  ExecutionResult r = e.run(add_chain(2, 3));
  EXPECT_EQ(counter().get("TestAdd"), 2);
  EXPECT_EQ(r.messages[1][1]["nodes"], json::array());
}

TEST(Executor, ResetForgetsCachedOutputs) {
  Engine e;
  e.run(add_chain(2, 3));
  e.executor.reset();
  e.run(add_chain(2, 3));
  EXPECT_EQ(counter().get("TestAdd"), 2);
}

TEST(Executor, ChangedFingerprintReruns) {
  Engine e;
  auto prompt = [](const char* fp) {
    return json{{"1", node("TestChanged", {{"value", 1}, {"fingerprint", fp}})},
                {"2", node("TestOutput", {{"value", link("1")}})}};
  };
  e.run(prompt("a"));
  e.run(prompt("a"));
  EXPECT_EQ(counter().get("TestChanged"), 1);
  e.run(prompt("nan"));
  e.run(prompt("nan"));
  EXPECT_EQ(counter().get("TestChanged"), 3);  // NaN never equals itself
}

TEST(Executor, IsChangedKeyInPromptOverridesFingerprint) {
  Engine e;
  json p{{"1", node("TestChanged", {{"value", 1}, {"fingerprint", "nan"}})},
         {"2", node("TestOutput", {{"value", link("1")}})}};
  p["1"]["is_changed"] = "v1";
  e.run(p);
  e.run(p);
  EXPECT_EQ(counter().get("TestChanged"), 1);
  p["1"]["is_changed"] = "v2";
  e.run(p);
  EXPECT_EQ(counter().get("TestChanged"), 2);
  // Only nodes with a fingerprint function read the key (ComfyUI's IsChangedCache).
  json q = add_chain(2, 3);
  q["3"]["is_changed"] = "v1";
  e.run(q);
  q["3"]["is_changed"] = "v2";
  e.run(q);
  EXPECT_EQ(counter().get("TestAdd"), 1);
}

TEST(Executor, FingerprintIsWrittenIntoThePromptAsRun) {
  Engine e;
  json p{{"1", node("TestChanged", {{"value", 1}, {"fingerprint", "abc"}})},
         {"2", node("TestOutput", {{"value", link("1")}})}};
  ExecutionResult r = e.run(p);
  EXPECT_EQ(r.prompt["1"]["is_changed"], json::parse(R"J(["abc"])J"));
  EXPECT_FALSE(r.prompt["2"].contains("is_changed"));
}

TEST(Executor, ModelFileChangeInvalidatesTheCache) {
  namespace fs = std::filesystem;
  fs::path base = fs::temp_directory_path() / ("comfy_exec_model_" + std::to_string(::getpid()));
  fs::create_directories(base / "models" / "checkpoints");
  std::ofstream(base / "models" / "checkpoints" / "a.safetensors") << "one";
  FolderPaths folders(base);
  Engine e;
  e.services.list_folder = [&](const std::string& f) { return folders.get_filename_list(f); };
  e.services.model_fingerprint = [&](const std::string& f, const std::string& n) { return folders.file_fingerprint(f, n); };
  json p{{"1", node("TestModelLoader", {{"ckpt_name", "a.safetensors"}})}, {"2", node("TestOutput", {{"value", link("1")}})}};
  e.run(p);
  e.run(p);
  EXPECT_EQ(counter().get("TestModelLoader"), 1);
  std::ofstream(base / "models" / "checkpoints" / "a.safetensors") << "a longer content";
  e.run(p);
  EXPECT_EQ(counter().get("TestModelLoader"), 2);
  fs::remove_all(base);
}

TEST(Executor, NodeStateLivesWhileTheIdKeepsItsClass) {
  Engine e;
  auto prompt = [](int v) {
    return json{{"1", node("TestStateful", {{"value", v}})}, {"2", node("TestOutput", {{"value", link("1")}})}};
  };
  EXPECT_EQ(e.run(prompt(1)).outputs["2"]["values"][0], 1);
  EXPECT_EQ(e.run(prompt(2)).outputs["2"]["values"][0], 2);  // same id, same class: same state
  e.run(add_chain(1, 1));                                     // id 1 is now a TestInt: state dropped
  EXPECT_EQ(e.run(prompt(3)).outputs["2"]["values"][0], 1);
  e.executor.reset();
  EXPECT_EQ(e.run(prompt(4)).outputs["2"]["values"][0], 1);
}

TEST(Executor, LazyInputOnlyEvaluatesTheNeededBranch) {
  Engine e;
  json p{{"1", node("TestInt", {{"value", 1}})},
         {"2", node("TestSlow", {{"value", 2}, {"steps", 1}, {"sleep_ms", 0}})},
         {"3", node("TestLazySwitch", {{"select", true}, {"on_true", link("1")}, {"on_false", link("2")}})},
         {"4", node("TestOutput", {{"value", link("3")}})}};
  ExecutionResult r = e.run(p);
  ASSERT_TRUE(r.success);
  EXPECT_EQ(r.outputs["4"]["values"][0], 1);
  EXPECT_EQ(counter().get("TestSlow"), 0);
  p["3"]["inputs"]["select"] = false;
  r = e.run(p);
  EXPECT_EQ(r.outputs["4"]["values"][0], 2);
  EXPECT_EQ(counter().get("TestSlow"), 1);
}

TEST(Executor, ListOutputMapsDownstreamNodesOverItems) {
  Engine e;
  json p{{"1", node("TestMakeList", {{"start", 0}, {"count", 3}})},
         {"2", node("TestInt", {{"value", 10}})},
         {"3", node("TestAdd", {{"a", link("1")}, {"b", link("2")}})},
         {"4", node("TestOutput", {{"value", link("3")}})}};
  ExecutionResult r = e.run(p);
  ASSERT_TRUE(r.success);
  EXPECT_EQ(counter().get("TestAdd"), 3);
  EXPECT_EQ(counter().get("TestOutput"), 3);
  EXPECT_EQ(r.outputs["4"]["values"], json::parse("[10, 11, 12]"));
}

TEST(Executor, InputIsListReceivesTheWholeList) {
  Engine e;
  json p{{"1", node("TestMakeList", {{"start", 1}, {"count", 4}})},
         {"2", node("TestSumList", {{"values", link("1")}})},
         {"3", node("TestOutput", {{"value", link("2")}})}};
  ExecutionResult r = e.run(p);
  ASSERT_TRUE(r.success);
  EXPECT_EQ(r.outputs["3"]["values"], json::parse("[10]"));
}

TEST(Executor, ShorterListsRepeatTheirLastItem) {
  Engine e;
  json p{{"1", node("TestMakeList", {{"start", 0}, {"count", 3}})},
         {"2", node("TestMakeList", {{"start", 100}, {"count", 2}})},
         {"3", node("TestAdd", {{"a", link("1")}, {"b", link("2")}})},
         {"4", node("TestOutput", {{"value", link("3")}})}};
  ExecutionResult r = e.run(p);
  EXPECT_EQ(r.outputs["4"]["values"], json::parse("[100, 102, 103]"));
}

TEST(Executor, HiddenInputsAreInjected) {
  Engine e;
  json p{{"7", node("TestHidden", {{"value", 1}})}};
  ExecutionResult r = e.run(p, json{{"client_id", "c"}, {"extra_pnginfo", {{"workflow", {{"id", "w"}}}}}});
  ASSERT_TRUE(r.success);
  EXPECT_EQ(r.outputs["7"]["unique_id"], json::parse(R"J(["7"])J"));
  EXPECT_EQ(r.outputs["7"]["extra_pnginfo"], json::parse(R"J([{"workflow": {"id": "w"}}])J"));
  EXPECT_EQ(r.outputs["7"]["prompt_nodes"], json::parse("[1]"));
}

TEST(Executor, UniqueIdHiddenInputKeepsNodesApartInTheCache) {
  Engine e;
  json p{{"7", node("TestHidden", {{"value", 1}})}, {"8", node("TestHidden", {{"value", 1}})}};
  e.run(p);
  EXPECT_EQ(counter().get("TestHidden"), 2);
}

TEST(Executor, ExecutionErrorCarriesNodeAndInputs) {
  Engine e;
  json p{{"1", node("TestInt", {{"value", 4}})},
         {"2", node("TestFail", {{"value", link("1")}, {"message", "bad value"}})},
         {"3", node("TestOutput", {{"value", link("2")}})}};
  ExecutionResult r = e.run(p);
  ASSERT_FALSE(r.success);
  EXPECT_EQ(r.messages.back()[0], "execution_error");
  json err = r.error;
  EXPECT_EQ(err["prompt_id"], "prompt");
  EXPECT_EQ(err["node_id"], "2");
  EXPECT_EQ(err["node_type"], "TestFail");
  EXPECT_EQ(err["executed"], json::parse(R"J(["1"])J"));
  EXPECT_EQ(err["exception_message"], "bad value\n");
  EXPECT_EQ(err["exception_type"], "ValueError");
  EXPECT_TRUE(err["traceback"].is_array());
  EXPECT_EQ(err["current_inputs"], json::parse(R"J({"value": [4], "message": ["bad value"]})J"));
  EXPECT_EQ(err["current_outputs"], json::array());
  EXPECT_TRUE(err["timestamp"].is_number_integer());
  EXPECT_FALSE(r.outputs.contains("3"));
}

TEST(Executor, CycleFailsAtExecution) {
  Engine e;
  json p{{"1", node("TestAdd", {{"a", link("2")}, {"b", 1}})},
         {"2", node("TestAdd", {{"a", link("1")}, {"b", 1}})},
         {"3", node("TestOutput", {{"value", link("2")}})}};
  // Validation refuses such a prompt; the executor must still name a cycle it is handed.
  ExecutionResult r = e.executor.execute(p, "prompt", json::object(), {"3"});
  ASSERT_FALSE(r.success);
  EXPECT_EQ(r.error["exception_type"], "graph.DependencyCycleError");
  EXPECT_EQ(r.error["exception_message"], "Dependency cycle detected");
  EXPECT_EQ(r.error["current_inputs"], json::array());
  // ComfyUI dissolves from the sources and blames the first node left: here the output.
  EXPECT_EQ(r.error["node_id"], "3");
  EXPECT_EQ(counter().get("TestAdd"), 0);
}

TEST(Executor, OutputNodesRunAsSoonAsTheyAreReady) {
  // ComfyUI's "UX-friendly" pick: an output whose inputs are ready runs before unrelated work.
  Engine e;
  json p{{"1", node("TestInt", {{"value", 1}})},
         {"2", node("TestOutput", {{"value", link("1")}})},
         {"3", node("TestInt", {{"value", 2}})},
         {"4", node("TestAdd", {{"a", link("3")}, {"b", link("3")}})},
         {"5", node("TestOutput", {{"value", link("4")}})}};
  e.run(p);
  auto order = e.executing_order();
  ASSERT_EQ(order.size(), 5u);
  // The first output's dependency runs first, then the output itself, then the second branch.
  EXPECT_EQ(order[0], "1");
  EXPECT_EQ(order[1], "2");
  EXPECT_EQ(order[4], "5");
}

TEST(Executor, ProgressIsReportedPerTick) {
  Engine e;
  json p{{"1", node("TestSlow", {{"value", 3}, {"steps", 4}, {"sleep_ms", 0}})},
         {"2", node("TestOutput", {{"value", link("1")}})}};
  e.run(p);
  auto progress = e.sink.of_type("progress");
  ASSERT_EQ(progress.size(), 4u);
  EXPECT_EQ(progress[3].data, json::parse(R"J({"value": 4.0, "max": 4.0, "prompt_id": "prompt", "node": "1"})J"));
  auto states = e.sink.of_type("progress_state");
  EXPECT_EQ(states.back().data["nodes"]["2"]["state"], "finished");
}

TEST(Executor, InterruptStopsALongNode) {
  Engine e;
  json p{{"1", node("TestSlow", {{"value", 3}, {"steps", 1000}, {"sleep_ms", 5}})},
         {"2", node("TestOutput", {{"value", link("1")}})}};
  ValidationResult v = e.validate(p);
  std::thread stopper([&] {
    while (e.sink.of_type("progress").empty()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    e.executor.interrupt();
  });
  ExecutionResult r = e.executor.execute(p, "prompt", json::object(), v.outputs);
  stopper.join();
  EXPECT_FALSE(r.success);
  EXPECT_TRUE(r.interrupted);
  EXPECT_EQ(r.messages.back()[0], "execution_interrupted");
  EXPECT_EQ(r.error["node_id"], "1");
  EXPECT_EQ(r.error["node_type"], "TestSlow");
  EXPECT_LT(e.sink.of_type("progress").size(), 1000u);
  // Without a client, the interruption is broadcast.
  EXPECT_EQ(e.sink.of_type("execution_interrupted").size(), 1u);
  // The next prompt starts with the flag cleared.
  EXPECT_TRUE(e.run(add_chain(1, 1)).success);
}

TEST(Executor, BlockerWithMessageReportsOnceAndStopsDownstream) {
  Engine e;
  json p{{"1", node("TestInt", {{"value", 1}})},
         {"2", node("TestBlock", {{"value", link("1")}, {"message", "muted"}})},
         {"3", node("TestAdd", {{"a", link("2")}, {"b", 1}})},
         {"4", node("TestOutput", {{"value", link("3")}})},
         {"5", node("TestOutput", {{"value", link("1")}})}};
  ExecutionResult r = e.run(p);
  EXPECT_TRUE(r.success);
  EXPECT_EQ(counter().get("TestAdd"), 0);
  EXPECT_FALSE(r.outputs.contains("4"));
  EXPECT_EQ(r.outputs["5"]["values"][0], 1);
  auto errors = e.sink.of_type("execution_error");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].data["exception_message"], "Execution Blocked: muted");
  EXPECT_EQ(errors[0].data["exception_type"], "ExecutionBlocked");
}

TEST(Executor, MessagesWithoutClientAreNotSentButRecorded) {
  Engine e;
  ExecutionResult r = e.run(add_chain(1, 2), json::object());
  EXPECT_TRUE(r.success);
  EXPECT_TRUE(e.sink.of_type("execution_start").empty());
  EXPECT_TRUE(e.sink.of_type("executed").empty());
  EXPECT_EQ(r.messages.size(), 3u);
}

}  // namespace
}  // namespace comfy::testing
