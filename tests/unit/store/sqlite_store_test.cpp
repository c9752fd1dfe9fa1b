#include "store/sqlite_store.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace comfy {
namespace {

namespace fs = std::filesystem;

// A fresh directory under the system temp directory, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    std::random_device rd;
    path_ = fs::temp_directory_path() /
            ("comfy_sqlite_store_test_" + std::to_string(::getpid()) + "_" +
             std::to_string(counter++) + "_" + std::to_string(rd()));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

QueueItem make_item(double number, const std::string& id) {
  QueueItem item;
  item.number = number;
  item.prompt_id = id;
  item.prompt = json::parse(R"({"3":{"class_type":"KSampler","inputs":{"seed":5}},"1":{"class_type":"Load","inputs":{}}})");
  item.extra_data = json::parse(R"({"client_id":"client-1","extra_pnginfo":{"workflow":{"z":1,"a":2}}})");
  item.outputs = {"9", "12"};
  return item;
}

std::vector<std::string> queue_ids(SqliteQueueStore& store) {
  std::vector<std::string> ids;
  for (const QueueItem& item : store.load_queue()) ids.push_back(item.prompt_id);
  return ids;
}

std::vector<std::string> history_ids(SqliteQueueStore& store) {
  std::vector<std::string> ids;
  for (const auto& [id, entry] : store.load_history()) ids.push_back(id);
  return ids;
}

// The message of the std::runtime_error that constructing a store on `file` throws, or "" if none.
std::string construction_error(const fs::path& file) {
  try {
    SqliteQueueStore store(file);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

std::string read_bytes(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Every byte of the database, its WAL and its shared-memory index, as they are on disk now.
std::string all_db_bytes(const fs::path& dir) {
  std::string bytes;
  for (const auto& entry : fs::directory_iterator(dir)) bytes += read_bytes(entry.path());
  return bytes;
}

// Runs one SQL text on a plain connection (not the store's) and returns the first column of the
// first row, if any.
std::string raw_sql(const fs::path& file, const std::string& sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(file.string().c_str(), &db), SQLITE_OK);
  std::string first;
  char* err = nullptr;
  int rc = sqlite3_exec(
      db, sql.c_str(),
      [](void* out, int n, char** values, char**) {
        auto* s = static_cast<std::string*>(out);
        if (s->empty() && n > 0 && values[0]) *s = values[0];
        return 0;
      },
      &first, &err);
  EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(db);
  return first;
}

TEST(SqliteQueueStore, CreatesParentDirectoriesAndSchemaVersion1) {
  TempDir dir;
  fs::path file = dir.path() / "a" / "b" / "queue.db";
  { SqliteQueueStore store(file); }
  EXPECT_TRUE(fs::is_regular_file(file));
  EXPECT_EQ(raw_sql(file, "PRAGMA user_version"), "1");
  EXPECT_EQ(raw_sql(file, "PRAGMA journal_mode"), "wal");
  EXPECT_EQ(raw_sql(file, "SELECT group_concat(name, ',') FROM (SELECT name FROM sqlite_master "
                          "WHERE type = 'table' ORDER BY name)"),
            "history,queue");
  // Reopening an up-to-date database migrates nothing and keeps the version.
  { SqliteQueueStore store(file); }
  EXPECT_EQ(raw_sql(file, "PRAGMA user_version"), "1");
}

TEST(SqliteQueueStore, PendingItemsSurviveReopen) {
  TempDir dir;
  fs::path file = dir.path() / "queue.db";
  {
    SqliteQueueStore store(file);
    store.add_pending(make_item(0, "first"));
    store.add_pending(make_item(1, "second"));
    QueueItem third = make_item(2, "third");
    third.outputs = {};
    third.extra_data = json::object();
    store.add_pending(third);
  }
  SqliteQueueStore store(file);
  std::vector<QueueItem> items = store.load_queue();
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[0].prompt_id, "first");
  EXPECT_EQ(items[0].number, 0.0);
  EXPECT_EQ(items[0].prompt.dump(),
            R"({"3":{"class_type":"KSampler","inputs":{"seed":5}},"1":{"class_type":"Load","inputs":{}}})");
  EXPECT_EQ(items[0].extra_data.dump(),
            R"({"client_id":"client-1","extra_pnginfo":{"workflow":{"z":1,"a":2}}})");
  EXPECT_EQ(items[0].outputs, (std::vector<std::string>{"9", "12"}));
  EXPECT_EQ(items[1].prompt_id, "second");
  EXPECT_EQ(items[1].number, 1.0);
  EXPECT_EQ(items[2].prompt_id, "third");
  EXPECT_EQ(items[2].number, 2.0);
  EXPECT_EQ(items[2].extra_data.dump(), "{}");
  EXPECT_TRUE(items[2].outputs.empty());
  EXPECT_TRUE(store.load_history().empty());
}

TEST(SqliteQueueStore, PendingOrderIsNumberThenInsertion) {
  TempDir dir;
  SqliteQueueStore store(dir.path() / "queue.db");
  store.add_pending(make_item(5, "a"));
  store.add_pending(make_item(1, "b"));
  store.add_pending(make_item(5, "c"));
  store.add_pending(make_item(-1, "d"));
  store.add_pending(make_item(2.5, "e"));
  store.add_pending(make_item(1, "f"));
  EXPECT_EQ(queue_ids(store), (std::vector<std::string>{"d", "b", "f", "e", "a", "c"}));
  std::vector<QueueItem> items = store.load_queue();
  EXPECT_EQ(items[0].number, -1.0);
  EXPECT_EQ(items[3].number, 2.5);
}

TEST(SqliteQueueStore, RunningItemComesBackFirst) {
  TempDir dir;
  fs::path file = dir.path() / "queue.db";
  {
    SqliteQueueStore store(file);
    store.add_pending(make_item(1, "a"));
    store.add_pending(make_item(2, "b"));
    store.add_pending(make_item(3, "c"));
    store.mark_running("c");
  }
  SqliteQueueStore store(file);
  EXPECT_EQ(queue_ids(store), (std::vector<std::string>{"c", "a", "b"}));
  EXPECT_EQ(store.load_queue()[0].number, 3.0);
}

TEST(SqliteQueueStore, RemoveAndClearPendingKeepRunningItem) {
  TempDir dir;
  SqliteQueueStore store(dir.path() / "queue.db");
  store.add_pending(make_item(1, "a"));
  store.add_pending(make_item(2, "b"));
  store.add_pending(make_item(3, "c"));
  store.add_pending(make_item(4, "d"));
  store.mark_running("a");
  store.remove_pending("c");
  store.remove_pending("no-such-id");
  store.remove_pending("a");  // running, so not pending: stays until finish()
  EXPECT_EQ(queue_ids(store), (std::vector<std::string>{"a", "b", "d"}));
  store.clear_pending();
  EXPECT_EQ(queue_ids(store), (std::vector<std::string>{"a"}));
  store.finish("a", json::parse(R"({"status":{"completed":true}})"));
  EXPECT_TRUE(store.load_queue().empty());
}

TEST(SqliteQueueStore, AddingAStoredPromptIdReplacesIt) {
  TempDir dir;
  SqliteQueueStore store(dir.path() / "queue.db");
  store.add_pending(make_item(1, "a"));
  store.add_pending(make_item(1, "b"));
  store.mark_running("a");
  QueueItem again = make_item(1, "a");
  again.prompt = json::parse(R"({"7":{"class_type":"Other","inputs":{}}})");
  store.add_pending(again);
  std::vector<QueueItem> items = store.load_queue();
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].prompt_id, "b");
  EXPECT_EQ(items[1].prompt_id, "a");
  EXPECT_EQ(items[1].prompt.dump(), R"({"7":{"class_type":"Other","inputs":{}}})");
}

TEST(SqliteQueueStore, FinishMovesItemToHistoryAtomically) {
  TempDir dir;
  fs::path file = dir.path() / "queue.db";
  SqliteQueueStore store(file);
  store.add_pending(make_item(1, "a"));
  store.add_pending(make_item(2, "b"));
  store.mark_running("a");

  // Make the history half of finish() fail: the queue half must be undone with it.
  raw_sql(file,
          "CREATE TRIGGER fail_history BEFORE INSERT ON history "
          "BEGIN SELECT RAISE(ABORT, 'injected history failure'); END");
  std::string error;
  try {
    store.finish("a", json::parse(R"({"outputs":{}})"));
  } catch (const std::runtime_error& e) {
    error = e.what();
  }
  EXPECT_NE(error.find("injected history failure"), std::string::npos) << error;
  EXPECT_NE(error.find("finish('a')"), std::string::npos) << error;
  EXPECT_EQ(queue_ids(store), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(store.load_history().empty());

  raw_sql(file, "DROP TRIGGER fail_history");
  store.finish("a", json::parse(R"({"outputs":{"9":{"images":[]}},"status":{"completed":true}})"));
  EXPECT_EQ(queue_ids(store), (std::vector<std::string>{"b"}));
  std::vector<std::pair<std::string, json>> history = store.load_history();
  ASSERT_EQ(history.size(), 1u);
  EXPECT_EQ(history[0].first, "a");
  EXPECT_EQ(history[0].second.dump(), R"({"outputs":{"9":{"images":[]}},"status":{"completed":true}})");

  // What finish() committed is on disk for the next process.
  SqliteQueueStore reopened(file);
  EXPECT_EQ(queue_ids(reopened), (std::vector<std::string>{"b"}));
  EXPECT_EQ(history_ids(reopened), (std::vector<std::string>{"a"}));
}

TEST(SqliteQueueStore, HistoryOrderAndDelete) {
  TempDir dir;
  fs::path file = dir.path() / "queue.db";
  {
    SqliteQueueStore store(file);
    for (const char* id : {"a", "b", "c"}) {
      store.add_pending(make_item(1, id));
      store.mark_running(id);
      store.finish(id, json{{"id", id}});
    }
    store.delete_history("b");
    store.delete_history("no-such-id");
    EXPECT_EQ(history_ids(store), (std::vector<std::string>{"a", "c"}));
  }
  SqliteQueueStore store(file);
  EXPECT_EQ(history_ids(store), (std::vector<std::string>{"a", "c"}));
  store.finish("d", json{{"id", "d"}});
  store.finish("b", json{{"id", "b"}});
  EXPECT_EQ(history_ids(store), (std::vector<std::string>{"a", "c", "d", "b"}));
  EXPECT_EQ(store.load_history()[3].second.dump(), R"({"id":"b"})");
  store.clear_history();
  EXPECT_TRUE(store.load_history().empty());
  EXPECT_TRUE(store.load_queue().empty());
}

TEST(SqliteQueueStore, HistoryRewriteKeepsPosition) {
  TempDir dir;
  SqliteQueueStore store(dir.path() / "queue.db");
  store.finish("a", json{{"v", 1}});
  store.finish("b", json{{"v", 2}});
  store.finish("a", json{{"v", 3}});
  std::vector<std::pair<std::string, json>> history = store.load_history();
  ASSERT_EQ(history.size(), 2u);
  EXPECT_EQ(history[0].first, "a");
  EXPECT_EQ(history[0].second.dump(), R"({"v":3})");
  EXPECT_EQ(history[1].first, "b");
}

TEST(SqliteQueueStore, SensitiveDataNeverStored) {
  TempDir dir;
  fs::path file = dir.path() / "queue.db";
  {
    SqliteQueueStore store(file);
    QueueItem item = make_item(1, "with-secret");
    item.prompt["3"]["inputs"]["marker"] = "VISIBLE-PROMPT-MARKER-4417";
    item.sensitive = json{{"api_key_comfy_org", "SECRET-KEY-9f8e7d6c5b4a"}};
    store.add_pending(item);
    QueueItem other = make_item(2, "other");
    other.sensitive = json{{"auth_token_comfy_org", "SECRET-KEY-9f8e7d6c5b4a"}};
    store.add_pending(other);
    store.mark_running("other");
    store.finish("other", json{{"status", "done"}});

    std::string bytes = all_db_bytes(dir.path());  // with the store open: the WAL holds the data
    EXPECT_NE(bytes.find("VISIBLE-PROMPT-MARKER-4417"), std::string::npos);
    EXPECT_EQ(bytes.find("SECRET-KEY-9f8e7d6c5b4a"), std::string::npos);

    std::vector<QueueItem> items = store.load_queue();
    ASSERT_EQ(items.size(), 1u);
    EXPECT_EQ(items[0].sensitive.dump(), "{}");
  }
  std::string bytes = all_db_bytes(dir.path());  // closed: checkpointed into the main file
  EXPECT_NE(bytes.find("VISIBLE-PROMPT-MARKER-4417"), std::string::npos);
  EXPECT_EQ(bytes.find("SECRET-KEY-9f8e7d6c5b4a"), std::string::npos);
}

TEST(SqliteQueueStore, RefusesNewerSchema) {
  TempDir dir;
  fs::path file = dir.path() / "queue.db";
  raw_sql(file, "CREATE TABLE future (x); PRAGMA user_version = 2");
  std::string error = construction_error(file);
  EXPECT_NE(error.find("has schema version 2, newer than this build of comfy.cpp knows (up to 1)"),
            std::string::npos)
      << error;
  EXPECT_NE(error.find(file.string()), std::string::npos) << error;
  // The file is left as it was: same version, journal mode not switched to WAL.
  EXPECT_EQ(raw_sql(file, "PRAGMA user_version"), "2");
  EXPECT_EQ(raw_sql(file, "PRAGMA journal_mode"), "delete");
}

TEST(SqliteQueueStore, MigratesAnEmptyVersion0Database) {
  TempDir dir;
  fs::path file = dir.path() / "queue.db";
  raw_sql(file, "PRAGMA user_version = 0; CREATE TABLE unrelated (x); DROP TABLE unrelated");
  SqliteQueueStore store(file);
  store.add_pending(make_item(1, "a"));
  EXPECT_EQ(queue_ids(store), (std::vector<std::string>{"a"}));
  EXPECT_EQ(raw_sql(file, "PRAGMA user_version"), "1");
}

TEST(SqliteQueueStore, RefusesCorruptFile) {
  TempDir dir;
  fs::path file = dir.path() / "queue.db";
  std::string garbage;
  for (int i = 0; i < 200; ++i) garbage += "This is certainly not a SQLite database.\n";
  { std::ofstream(file, std::ios::binary) << garbage; }
  std::string error = construction_error(file);
  EXPECT_NE(error.find("is corrupt or not a SQLite database: file is not a database"), std::string::npos)
      << error;
  EXPECT_NE(error.find(file.string()), std::string::npos) << error;
  EXPECT_EQ(read_bytes(file), garbage);  // untouched
}

TEST(SqliteQueueStore, RefusesDamagedPages) {
  TempDir dir;
  fs::path file = dir.path() / "queue.db";
  {
    SqliteQueueStore store(file);
    for (int i = 0; i < 50; ++i) store.add_pending(make_item(i, "item-" + std::to_string(i)));
  }
  ASSERT_FALSE(fs::exists(dir.path() / "queue.db-wal"));  // checkpointed on close
  std::string bytes = read_bytes(file);
  ASSERT_GT(bytes.size(), 3u * 4096u);
  // Page 2 is the queue table's root b-tree page; wreck its header.
  for (size_t i = 4096; i < 4096 + 64; ++i) bytes[i] = static_cast<char>(0xEE);
  { std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes; }
  std::string error = construction_error(file);
  EXPECT_NE(error.find("is corrupt or not a SQLite database"), std::string::npos) << error;
}

TEST(SqliteQueueStore, UnopenablePathThrows) {
  TempDir dir;
  fs::path not_a_file = dir.path() / "a-directory";
  fs::create_directories(not_a_file);
  std::string error = construction_error(not_a_file);
  EXPECT_NE(error.find("queue database '" + not_a_file.string() + "'"), std::string::npos) << error;

  fs::path blocker = dir.path() / "plain-file";
  { std::ofstream(blocker) << "x"; }
  error = construction_error(blocker / "queue.db");
  EXPECT_NE(error.find("cannot create directory"), std::string::npos) << error;
}

TEST(SqliteQueueStore, SurvivesKilledProcess) {
  TempDir dir;
  fs::path file = dir.path() / "queue.db";
  pid_t pid = ::fork();
  ASSERT_NE(pid, -1);
  if (pid == 0) {
    // The child: write, then die without closing anything or running any destructor.
    int code = 3;
    try {
      auto* store = new SqliteQueueStore(file);
      for (int i = 0; i < 20; ++i) store->add_pending(make_item(i, "p" + std::to_string(i)));
      store->mark_running("p0");
      store->mark_running("p1");
      store->finish("p1", json{{"status", "ok"}});
      store->remove_pending("p2");
      ::kill(::getpid(), SIGKILL);
      code = 4;  // not reached
    } catch (...) {
    }
    ::_exit(code);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
  EXPECT_TRUE(fs::exists(dir.path() / "queue.db-wal"));  // never closed, never checkpointed

  SqliteQueueStore store(file);
  std::vector<std::string> expected = {"p0"};
  for (int i = 3; i < 20; ++i) expected.push_back("p" + std::to_string(i));
  EXPECT_EQ(queue_ids(store), expected);
  std::vector<std::pair<std::string, json>> history = store.load_history();
  ASSERT_EQ(history.size(), 1u);
  EXPECT_EQ(history[0].first, "p1");
  EXPECT_EQ(history[0].second.dump(), R"({"status":"ok"})");
  EXPECT_EQ(store.load_queue()[0].prompt.dump(),
            R"({"3":{"class_type":"KSampler","inputs":{"seed":5}},"1":{"class_type":"Load","inputs":{}}})");
}

TEST(SqliteQueueStore, ConcurrentWritersFromManyThreads) {
  TempDir dir;
  fs::path file = dir.path() / "queue.db";
  SqliteQueueStore store(file);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&store, t] {
      for (int i = 0; i < 25; ++i) {
        std::string id = "t" + std::to_string(t) + "-" + std::to_string(i);
        store.add_pending(make_item(t * 100 + i, id));
        if (i % 5 == 0) {
          store.mark_running(id);
          store.finish(id, json{{"id", id}});
        }
        store.load_queue();
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(store.load_queue().size(), 80u);
  EXPECT_EQ(store.load_history().size(), 20u);
  EXPECT_EQ(store.load_queue().front().prompt_id, "t0-1");
  EXPECT_EQ(store.load_queue().back().prompt_id, "t3-24");
}

TEST(QueueItem, ToJsonShape) {
  QueueItem item;
  item.number = 3;
  item.prompt_id = "abc";
  item.prompt = json::parse(R"({"2":{"class_type":"B","inputs":{}},"1":{"class_type":"A","inputs":{}}})");
  item.extra_data = json::parse(R"({"client_id":"c1"})");
  item.outputs = {"9", "7"};
  item.sensitive = json{{"api_key_comfy_org", "secret"}};
  EXPECT_EQ(item.to_json().dump(),
            R"([3,"abc",{"2":{"class_type":"B","inputs":{}},"1":{"class_type":"A","inputs":{}}},{"client_id":"c1"},["9","7"]])");

  item.number = 2.5;
  EXPECT_EQ(item.to_json()[0].dump(), "2.5");
  item.number = -4;
  EXPECT_EQ(item.to_json()[0].dump(), "-4");
  EXPECT_TRUE(item.to_json()[0].is_number_integer());
  item.number = -0.25;
  EXPECT_EQ(item.to_json()[0].dump(), "-0.25");
}

TEST(QueueItem, ToJsonOfDefaultItem) {
  EXPECT_EQ(QueueItem{}.to_json().dump(), R"([0,"",{},{},[]])");
}

}  // namespace
}  // namespace comfy
