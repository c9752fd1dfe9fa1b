// The durable QueueStore: one SQLite database file (WAL journal, synchronous=FULL) holding the
// prompt queue and the history, so a restarted or killed server loses no prompt and no result.
//
// Schema (version 1, kept in PRAGMA user_version; see the migration steps in sqlite_store.cpp):
//   queue(prompt_id TEXT PRIMARY KEY, number REAL, seq INTEGER, prompt TEXT, extra_data TEXT,
//         outputs TEXT, state TEXT 'pending'|'running')
//   history(prompt_id TEXT PRIMARY KEY, seq INTEGER, entry TEXT)
// QueueItem::sensitive is never written. Every SQLite error surfaces as std::runtime_error
// carrying sqlite3_errmsg; a file that is not a SQLite database, is corrupt, or has a schema
// newer than this build knows is refused at construction.
#pragma once
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "graph/queue_store.h"

namespace comfy {

class SqliteQueueStore final : public QueueStore {
 public:
  // Opens (creating it, and its parent directories, if missing) and migrates the database.
  explicit SqliteQueueStore(const std::filesystem::path& db_file);
  ~SqliteQueueStore() override;
  SqliteQueueStore(const SqliteQueueStore&) = delete;
  SqliteQueueStore& operator=(const SqliteQueueStore&) = delete;

  // A prompt_id already stored is replaced: new contents, pending again, queued last among equals.
  void add_pending(const QueueItem& item) override;
  // Pending items only: a running item stays until finish() (so a crash mid-run re-queues it).
  void remove_pending(const std::string& prompt_id) override;
  void clear_pending() override;
  void mark_running(const std::string& prompt_id) override;
  // Rewriting an existing history entry keeps its position (as a Python dict assignment does).
  void finish(const std::string& prompt_id, const json& history_entry) override;
  void delete_history(const std::string& prompt_id) override;
  void clear_history() override;

  std::vector<QueueItem> load_queue() override;
  std::vector<std::pair<std::string, json>> load_history() override;

  const std::filesystem::path& path() const { return path_; }

 private:
  struct Impl;
  std::filesystem::path path_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace comfy
