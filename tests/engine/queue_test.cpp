// The prompt queue and history (spec 4.1, /queue and /history), and their persistence: a killed
// process loses no queued prompt and no history entry.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "engine/harness.h"
#include "graph/prompt_queue.h"
#include "store/sqlite_store.h"
#include "support/temp_files.h"

namespace comfy::testing {
namespace {

namespace fs = std::filesystem;
using comfy::test::TempDir;
using std::chrono::milliseconds;

QueueItem item(PromptQueue& q, const std::string& id, json prompt, bool front = false) {
  QueueItem i;
  i.number = q.next_number(front);
  i.prompt_id = id;
  i.prompt = std::move(prompt);
  i.extra_data = json{{"client_id", "c"}};
  i.outputs = {"2"};
  return i;
}

json simple(int v) {
  return json{{"1", node("TestInt", {{"value", v}})}, {"2", node("TestOutput", {{"value", link("1")}})}};
}

TEST(PromptQueue, SmallestNumberFirstAndFrontJumpsAhead) {
  MemoryQueueStore store;
  PromptQueue q(store, nullptr);
  q.put(item(q, "a", simple(1)));
  q.put(item(q, "b", simple(2)));
  q.put(item(q, "c", simple(3), true));  // number -2
  std::vector<std::string> order;
  while (auto next = q.get(milliseconds(0))) order.push_back(next->second.prompt_id);
  EXPECT_EQ(order, (std::vector<std::string>{"c", "a", "b"}));
  EXPECT_EQ(q.tasks_remaining(), 3u);  // all three are running now
}

TEST(PromptQueue, DeleteAndWipe) {
  MemoryQueueStore store;
  PromptQueue q(store, nullptr);
  q.put(item(q, "a", simple(1)));
  q.put(item(q, "b", simple(2)));
  EXPECT_TRUE(q.delete_queue_item("a"));
  EXPECT_FALSE(q.delete_queue_item("a"));
  json j = q.queue_json();
  ASSERT_EQ(j["queue_pending"].size(), 1u);
  EXPECT_EQ(j["queue_pending"][0][1], "b");
  EXPECT_EQ(j["queue_pending"][0][0], 1);
  q.wipe_queue();
  EXPECT_EQ(q.tasks_remaining(), 0u);
}

TEST(PromptQueue, WorkerRecordsHistoryInComfyUIShape) {
  Engine e;
  MemoryQueueStore store;
  PromptQueue q(store, &e.sink);
  q.put(item(q, "p1", simple(4)));
  ASSERT_TRUE(process_next_prompt(q, e.executor, &e.sink, milliseconds(0)));
  json h = q.get_history();
  ASSERT_TRUE(h.contains("p1"));
  EXPECT_EQ(h["p1"]["prompt"], json::parse(R"J([0, "p1", {"1": {"class_type": "TestInt", "inputs": {"value": 4}},
    "2": {"class_type": "TestOutput", "inputs": {"value": ["1", 0]}}}, {"client_id": "c"}, ["2"]])J"));
  EXPECT_EQ(h["p1"]["outputs"], json::parse(R"J({"2": {"values": [4]}})J"));
  EXPECT_EQ(h["p1"]["status"]["status_str"], "success");
  EXPECT_EQ(h["p1"]["status"]["completed"], true);
  EXPECT_EQ(h["p1"]["status"]["messages"].size(), 3u);
  EXPECT_EQ(h["p1"]["meta"]["2"]["node_id"], "2");
  // The final "executing" with node null goes to the prompt's client.
  auto executing = e.sink.of_type("executing");
  EXPECT_EQ(executing.back().data, json::parse(R"J({"node": null, "prompt_id": "p1"})J"));
  EXPECT_EQ(executing.back().sid, "c");
  EXPECT_EQ(e.sink.of_type("status").back().data, json::parse(R"J({"status": {"exec_info": {"queue_remaining": 0}}})J"));
}

TEST(PromptQueue, HistoryMaxItemsAndOffset) {
  Engine e;
  MemoryQueueStore store;
  PromptQueue q(store, nullptr);
  for (int i = 0; i < 4; ++i) q.put(item(q, "p" + std::to_string(i), simple(i)));
  while (process_next_prompt(q, e.executor, nullptr, milliseconds(0))) {
  }
  auto keys = [](const json& h) {
    std::vector<std::string> k;
    for (auto& [id, v] : h.items()) k.push_back(id);
    return k;
  };
  EXPECT_EQ(keys(q.get_history({}, 2)), (std::vector<std::string>{"p2", "p3"}));
  EXPECT_EQ(keys(q.get_history({}, 2, 1)), (std::vector<std::string>{"p1", "p2"}));
  EXPECT_EQ(keys(q.get_history({}, {}, 3)), (std::vector<std::string>{"p3"}));
  EXPECT_EQ(q.get_history(std::string("nope")), json::object());
  q.delete_history_item("p0");
  EXPECT_EQ(keys(q.get_history()), (std::vector<std::string>{"p1", "p2", "p3"}));
  q.wipe_history();
  EXPECT_EQ(q.get_history(), json::object());
}

TEST(PromptQueue, FailedPromptIsRecordedAsError) {
  Engine e;
  MemoryQueueStore store;
  PromptQueue q(store, nullptr);
  QueueItem i = item(q, "bad", json{{"1", node("TestFail", {{"value", 1}})}, {"2", node("TestOutput", {{"value", link("1")}})}});
  q.put(i);
  process_next_prompt(q, e.executor, nullptr, milliseconds(0));
  json h = q.get_history()["bad"];
  EXPECT_EQ(h["status"]["status_str"], "error");
  EXPECT_EQ(h["status"]["completed"], false);
  EXPECT_EQ(h["status"]["messages"].back()[0], "execution_error");
  EXPECT_EQ(h["outputs"], json::object());
}

TEST(PromptQueue, FreeMemoryFlagResetsTheCache) {
  Engine e;
  MemoryQueueStore store;
  PromptQueue q(store, nullptr);
  q.put(item(q, "a", simple(1)));
  process_next_prompt(q, e.executor, nullptr, milliseconds(0));
  q.set_flag("free_memory", true);
  EXPECT_FALSE(process_next_prompt(q, e.executor, nullptr, milliseconds(0)));
  q.put(item(q, "b", simple(1)));
  process_next_prompt(q, e.executor, nullptr, milliseconds(0));
  EXPECT_EQ(counter().get("TestInt"), 2);
}

TEST(PromptQueue, KilledProcessLosesNoPromptAndNoHistory) {
  TempDir dir;
  fs::path db = dir.path / "queue.db";
  pid_t child = fork();
  ASSERT_NE(child, -1);
  if (child == 0) {
    // The child: one prompt finishes, a slow one is running, two wait; then it is killed.
    Engine e;
    SqliteQueueStore store(db);
    PromptQueue q(store, &e.sink);
    q.put(item(q, "done", simple(1)));
    process_next_prompt(q, e.executor, nullptr, milliseconds(0));
    json slow{{"1", node("TestSlow", {{"value", 2}, {"steps", 100000}, {"sleep_ms", 1}})},
              {"2", node("TestOutput", {{"value", link("1")}})}};
    q.put(item(q, "running", slow));
    q.put(item(q, "waiting1", simple(3)));
    q.put(item(q, "waiting2", simple(4)));
    std::thread worker([&] { process_next_prompt(q, e.executor, nullptr, milliseconds(0)); });
    while (e.sink.of_type("progress").empty()) std::this_thread::sleep_for(milliseconds(1));
    kill(getpid(), SIGKILL);
    worker.join();
    _exit(0);
  }
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  ASSERT_EQ(WTERMSIG(status), SIGKILL);

  Engine e;
  SqliteQueueStore store(db);
  PromptQueue q(store, nullptr);
  EXPECT_TRUE(q.get_history().contains("done"));
  std::vector<std::string> order;
  for (auto& i : q.pending()) order.push_back(i.prompt_id);
  std::sort(order.begin(), order.end());
  EXPECT_EQ(order, (std::vector<std::string>{"running", "waiting1", "waiting2"}));
  // The interrupted prompt runs first again, and new prompts are numbered after the old ones.
  auto next = q.get(milliseconds(0));
  ASSERT_TRUE(next);
  EXPECT_EQ(next->second.prompt_id, "running");
  EXPECT_EQ(q.next_number(false), 4);
}

}  // namespace
}  // namespace comfy::testing
