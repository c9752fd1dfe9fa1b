// The queue and the history survive a killed server: a child process serves over a temp base
// directory, prompts are queued, the child is SIGKILLed mid-run, and a second child over the
// same directory shows the same history and runs the same pending prompts.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <fstream>

#include "routes/fixture.h"

namespace comfy::testing {
namespace {

namespace fs = std::filesystem;

// Forks a server over `dir`; the child writes its port to dir/port and serves until killed.
pid_t spawn_server(const fs::path& dir) {
  fs::remove(dir / "port");
  pid_t pid = fork();
  if (pid == 0) {
    try {
      TestServer s({}, dir);
      std::ofstream(dir / "port.tmp") << s.port;
      fs::rename(dir / "port.tmp", dir / "port");
      while (true) pause();
    } catch (...) {
    }
    _exit(1);
  }
  return pid;
}

uint16_t wait_port(const fs::path& dir) {
  uint16_t port = 0;
  wait_for([&] {
    std::ifstream in(dir / "port");
    return static_cast<bool>(in >> port);
  });
  return port;
}

TEST(RoutePersistence, QueueAndHistorySurviveSigkill) {
  fs::path dir = make_temp_dir("persist");
  pid_t child = spawn_server(dir);
  ASSERT_GT(child, 0);
  uint16_t port = wait_port(dir);
  ASSERT_NE(port, 0);

  // One finished prompt, one running (slow), two pending.
  ASSERT_EQ(http_post_json(port, "/prompt", json{{"prompt", int_prompt(1)}, {"prompt_id", "done"}}).status, 200);
  ASSERT_TRUE(wait_for([&] { return http_get(port, "/history/done").json_body().contains("done"); }));
  http_post_json(port, "/prompt", json{{"prompt", slow_prompt(1000, 10)}, {"prompt_id", "running"}});
  ASSERT_TRUE(wait_for([&] { return http_get(port, "/queue").json_body()["queue_running"].size() == 1; }));
  http_post_json(port, "/prompt", json{{"prompt", int_prompt(2)}, {"prompt_id", "p1"}});
  http_post_json(port, "/prompt", json{{"prompt", int_prompt(3)}, {"prompt_id", "p2"}, {"front", true}});
  json before = http_get(port, "/history").json_body();

  kill(child, SIGKILL);
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));

  // A restarted server over the same directory: a fresh in-process one, whose worker
  // picks the restored queue up.
  {
    TestServer s({}, dir);
    json h = s.get("/history/done").json_body();
    ASSERT_TRUE(h.contains("done"));
    EXPECT_EQ(h["done"], before["done"]);
    // Everything comes back pending, in number order: p2 (front), "running", p1. Interrupt the
    // slow one so the rest runs quickly.
    ASSERT_TRUE(wait_for([&] {
      json q = s.get("/queue").json_body();
      return q["queue_running"].size() == 1 && q["queue_running"][0][1] == "running";
    }));
    s.request("POST", "/interrupt");
    ASSERT_TRUE(wait_for([&] { return s.get("/history").json_body().size() == 4; }));
    json all = s.get("/history").json_body();
    std::vector<std::string> order;
    for (auto& [k, v] : all.items()) order.push_back(k);
    EXPECT_EQ(order, (std::vector<std::string>{"done", "p2", "running", "p1"}));
    EXPECT_EQ(all["p1"]["outputs"], (json{{"2", {{"values", {2}}}}}));
    // New prompts get numbers above the restored ones.
    json r = s.post("/prompt", json{{"prompt", int_prompt(4)}}).json_body();
    EXPECT_GT(r["number"].get<int64_t>(), 1);
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
}

}  // namespace
}  // namespace comfy::testing
