#include "store/sqlite_store.h"

#include <sqlite3.h>

#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <system_error>

namespace comfy {

namespace fs = std::filesystem;

namespace {

// Migration steps: kMigrations[v] takes a database from schema version v to v + 1. Append a
// step to change the schema; never edit a step that has shipped. The version lives in
// PRAGMA user_version (0 for a database nobody has written yet).
constexpr const char* kMigrations[] = {
    // 0 -> 1: the queue and the history.
    R"sql(
      CREATE TABLE queue (
        prompt_id  TEXT    NOT NULL PRIMARY KEY,
        number     REAL    NOT NULL,
        seq        INTEGER NOT NULL,
        prompt     TEXT    NOT NULL,
        extra_data TEXT    NOT NULL,
        outputs    TEXT    NOT NULL,
        state      TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'running'))
      );
      CREATE INDEX queue_order ON queue (state, number, seq);
      CREATE TABLE history (
        prompt_id TEXT    NOT NULL PRIMARY KEY,
        seq       INTEGER NOT NULL,
        entry     TEXT    NOT NULL
      );
      CREATE INDEX history_order ON history (seq);
    )sql",
};
constexpr int kSchemaVersion = static_cast<int>(std::size(kMigrations));

// How long a statement waits for another connection's lock (another process on the same file)
// before failing with "database is locked".
constexpr int kBusyTimeoutMs = 5000;

// JSON as stored: compact, and never throwing on invalid UTF-8 (replaced with U+FFFD).
std::string to_text(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string column_text(sqlite3_stmt* st, int col) {
  const unsigned char* p = sqlite3_column_text(st, col);
  int n = sqlite3_column_bytes(st, col);
  return p ? std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(n)) : std::string();
}

[[noreturn]] void fail_db(sqlite3* db, const std::string& where, const std::string& what) {
  throw std::runtime_error(where + ": " + what + ": " + (db ? sqlite3_errmsg(db) : "out of memory"));
}

}  // namespace

struct SqliteQueueStore::Impl {
  std::string where;  // "queue database '<path>'", the prefix of every error message
  sqlite3* db = nullptr;
  std::mutex mu;  // one connection, used by one thread at a time

  sqlite3_stmt* add_pending = nullptr;
  sqlite3_stmt* remove_pending = nullptr;
  sqlite3_stmt* clear_pending = nullptr;
  sqlite3_stmt* mark_running = nullptr;
  sqlite3_stmt* remove_queued = nullptr;
  sqlite3_stmt* put_history = nullptr;
  sqlite3_stmt* delete_history = nullptr;
  sqlite3_stmt* clear_history = nullptr;
  sqlite3_stmt* load_queue = nullptr;
  sqlite3_stmt* load_history = nullptr;
  sqlite3_stmt* begin = nullptr;
  sqlite3_stmt* commit = nullptr;
  sqlite3_stmt* rollback = nullptr;

  ~Impl() {
    for (sqlite3_stmt* st : {add_pending, remove_pending, clear_pending, mark_running, remove_queued,
                             put_history, delete_history, clear_history, load_queue, load_history,
                             begin, commit, rollback}) {
      sqlite3_finalize(st);  // harmless on nullptr
    }
    // close_v2 never fails on busy statements; the last connection to close checkpoints the WAL.
    if (db) sqlite3_close_v2(db);
  }

  [[noreturn]] void fail(const std::string& what) const { fail_db(db, where, what); }

  void exec(const std::string& sql, const std::string& what) {
    if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) fail(what);
  }

  sqlite3_stmt* prepare(const char* sql) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, nullptr) != SQLITE_OK) {
      sqlite3_finalize(st);
      fail(std::string("cannot prepare \"") + sql + "\"");
    }
    return st;
  }

  int user_version() {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, nullptr) != SQLITE_OK) {
      sqlite3_finalize(st);
      fail("cannot read the schema version");
    }
    int rc = sqlite3_step(st);
    int version = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW) fail("cannot read the schema version");
    return version;
  }

  [[noreturn]] void refuse_newer(int version) const {
    throw std::runtime_error(where + " has schema version " + std::to_string(version) +
                             ", newer than this build of comfy.cpp knows (up to " +
                             std::to_string(kSchemaVersion) +
                             "); refusing to open it: use a newer comfy.cpp or another database file");
  }

  // Reads the header and the structure of every page: a file that is not a database fails with
  // SQLITE_NOTADB, a damaged one reports problems instead of "ok".
  void check_integrity() {
    const std::string refused = where + " is corrupt or not a SQLite database: ";
    sqlite3_stmt* st = nullptr;
    int rc = sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &st, nullptr);
    std::string problems;
    if (rc == SQLITE_OK) {
      while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        std::string row = column_text(st, 0);
        if (row != "ok" && problems.size() < 1000) problems += (problems.empty() ? "" : "; ") + row;
      }
      if (rc == SQLITE_DONE) rc = SQLITE_OK;
    }
    std::string msg = rc == SQLITE_OK ? problems : std::string(sqlite3_errmsg(db));
    sqlite3_finalize(st);
    int primary = rc & 0xff;
    if (primary == SQLITE_NOTADB || primary == SQLITE_CORRUPT) throw std::runtime_error(refused + msg);
    if (rc != SQLITE_OK) throw std::runtime_error(where + ": cannot read: " + msg);
    if (!problems.empty()) throw std::runtime_error(refused + problems);
  }

  void migrate() {
    int version = user_version();
    if (version > kSchemaVersion) refuse_newer(version);
    if (version == kSchemaVersion) return;
    // IMMEDIATE: two processes opening a fresh file at once migrate one after the other.
    exec("BEGIN IMMEDIATE", "cannot start the schema migration");
    try {
      version = user_version();
      if (version > kSchemaVersion) refuse_newer(version);
      for (; version < kSchemaVersion; ++version) {
        exec(kMigrations[version], "schema migration from version " + std::to_string(version) +
                                       " to " + std::to_string(version + 1) + " failed");
      }
      // user_version is part of the database header, so it commits with the steps above.
      exec("PRAGMA user_version = " + std::to_string(kSchemaVersion), "cannot set the schema version");
      exec("COMMIT", "cannot commit the schema migration");
    } catch (...) {
      if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }
};

namespace {

// One use of a prepared statement: bindings in, rows out; reset (and unbound) when it ends,
// whatever happened, so the statement is ready for the next use and holds no read lock.
class Use {
 public:
  Use(sqlite3* db, const std::string& where, sqlite3_stmt* st, std::string what)
      : db_(db), where_(where), st_(st), what_(std::move(what)) {}
  ~Use() {
    sqlite3_reset(st_);
    sqlite3_clear_bindings(st_);
  }
  Use(const Use&) = delete;
  Use& operator=(const Use&) = delete;

  Use& text(int i, const std::string& s) {
    if (sqlite3_bind_text64(st_, i, s.data(), s.size(), SQLITE_TRANSIENT, SQLITE_UTF8) != SQLITE_OK) {
      fail_db(db_, where_, what_);
    }
    return *this;
  }
  Use& real(int i, double v) {
    if (sqlite3_bind_double(st_, i, v) != SQLITE_OK) fail_db(db_, where_, what_);
    return *this;
  }
  // True while there is a row to read.
  bool step() {
    int rc = sqlite3_step(st_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    fail_db(db_, where_, what_);
  }
  void run() {
    while (step()) {
    }
  }
  sqlite3_stmt* get() const { return st_; }

 private:
  sqlite3* db_;
  const std::string& where_;
  sqlite3_stmt* st_;
  std::string what_;
};

}  // namespace

SqliteQueueStore::SqliteQueueStore(const fs::path& db_file)
    : path_(db_file), impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.where = "queue database '" + path_.string() + "'";
  if (path_.empty()) throw std::runtime_error("queue database: empty path");

  fs::path parent = path_.parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    fs::create_directories(parent, ec);
    if (ec) {
      throw std::runtime_error(m.where + ": cannot create directory '" + parent.string() +
                               "': " + ec.message());
    }
  }

  // Our own mutex serializes the connection, so SQLite's per-connection mutex is not needed.
  // (A connection must not cross fork(): a child opens its own store.)
  int rc = sqlite3_open_v2(path_.string().c_str(), &m.db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = m.db ? sqlite3_errmsg(m.db) : sqlite3_errstr(rc);
    throw std::runtime_error(m.where + ": cannot open: " + msg);  // ~Impl closes the handle
  }
  sqlite3_extended_result_codes(m.db, 1);
  sqlite3_busy_timeout(m.db, kBusyTimeoutMs);

  // Refuse what we cannot read, or must not write, before changing anything in the file.
  m.check_integrity();
  if (int v = m.user_version(); v > kSchemaVersion) m.refuse_newer(v);

  // WAL: a commit appends to the -wal file, and a reader never blocks the writer. It persists in
  // the file. Where the filesystem cannot do WAL (no shared memory), SQLite keeps the rollback
  // journal, which is just as durable, so the answer is not checked.
  m.exec("PRAGMA journal_mode = WAL", "cannot enable WAL");
  // synchronous=NORMAL: in WAL mode a commit is in the OS's page cache when it returns, so it
  // survives a killed or crashed process; only an OS crash or power loss can drop the last
  // commits (never corrupt the file). FULL would fsync three times per prompt (queued, running,
  // done): 1-18 ms each on a loaded disk, more than a whole cached re-run of a prompt takes.
  m.exec("PRAGMA synchronous = NORMAL", "cannot set synchronous=NORMAL");
  m.migrate();

  m.add_pending = m.prepare(
      "INSERT INTO queue (prompt_id, number, seq, prompt, extra_data, outputs, state) "
      "VALUES (?1, ?2, (SELECT COALESCE(MAX(seq), 0) + 1 FROM queue), ?3, ?4, ?5, 'pending') "
      "ON CONFLICT (prompt_id) DO UPDATE SET number = excluded.number, seq = excluded.seq, "
      "prompt = excluded.prompt, extra_data = excluded.extra_data, outputs = excluded.outputs, "
      "state = 'pending'");
  m.remove_pending = m.prepare("DELETE FROM queue WHERE prompt_id = ?1 AND state = 'pending'");
  m.clear_pending = m.prepare("DELETE FROM queue WHERE state = 'pending'");
  m.mark_running = m.prepare("UPDATE queue SET state = 'running' WHERE prompt_id = ?1");
  m.remove_queued = m.prepare("DELETE FROM queue WHERE prompt_id = ?1");
  m.put_history = m.prepare(
      "INSERT INTO history (prompt_id, seq, entry) "
      "VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM history), ?2) "
      "ON CONFLICT (prompt_id) DO UPDATE SET entry = excluded.entry");
  m.delete_history = m.prepare("DELETE FROM history WHERE prompt_id = ?1");
  m.clear_history = m.prepare("DELETE FROM history");
  m.load_queue = m.prepare(
      "SELECT prompt_id, number, prompt, extra_data, outputs FROM queue "
      "ORDER BY state = 'running' DESC, number, seq");
  m.load_history = m.prepare("SELECT prompt_id, entry FROM history ORDER BY seq");
  m.begin = m.prepare("BEGIN IMMEDIATE");
  m.commit = m.prepare("COMMIT");
  m.rollback = m.prepare("ROLLBACK");
}

SqliteQueueStore::~SqliteQueueStore() = default;

void SqliteQueueStore::add_pending(const QueueItem& item) {
  // Serialize before taking the lock; `item.sensitive` is deliberately never touched.
  std::string outputs = to_text(json(item.outputs));
  std::string prompt = to_text(item.prompt);
  std::string extra = to_text(item.extra_data);
  std::lock_guard lock(impl_->mu);
  Use(impl_->db, impl_->where, impl_->add_pending, "add_pending('" + item.prompt_id + "')")
      .text(1, item.prompt_id)
      .real(2, item.number)
      .text(3, prompt)
      .text(4, extra)
      .text(5, outputs)
      .run();
}

void SqliteQueueStore::remove_pending(const std::string& prompt_id) {
  std::lock_guard lock(impl_->mu);
  Use(impl_->db, impl_->where, impl_->remove_pending, "remove_pending('" + prompt_id + "')")
      .text(1, prompt_id)
      .run();
}

void SqliteQueueStore::clear_pending() {
  std::lock_guard lock(impl_->mu);
  Use(impl_->db, impl_->where, impl_->clear_pending, "clear_pending").run();
}

void SqliteQueueStore::mark_running(const std::string& prompt_id) {
  std::lock_guard lock(impl_->mu);
  Use(impl_->db, impl_->where, impl_->mark_running, "mark_running('" + prompt_id + "')")
      .text(1, prompt_id)
      .run();
}

void SqliteQueueStore::finish(const std::string& prompt_id, const json& history_entry) {
  std::string entry = to_text(history_entry);
  std::lock_guard lock(impl_->mu);
  Impl& m = *impl_;
  const std::string what = "finish('" + prompt_id + "')";
  Use(m.db, m.where, m.begin, what).run();
  try {
    Use(m.db, m.where, m.remove_queued, what).text(1, prompt_id).run();
    Use(m.db, m.where, m.put_history, what).text(1, prompt_id).text(2, entry).run();
    Use(m.db, m.where, m.commit, what).run();
  } catch (...) {
    // Neither change happened. A failed COMMIT may leave the transaction open; a failed
    // statement may already have rolled it back (then there is nothing to undo).
    if (!sqlite3_get_autocommit(m.db)) {
      sqlite3_step(m.rollback);
      sqlite3_reset(m.rollback);
    }
    throw;
  }
}

void SqliteQueueStore::delete_history(const std::string& prompt_id) {
  std::lock_guard lock(impl_->mu);
  Use(impl_->db, impl_->where, impl_->delete_history, "delete_history('" + prompt_id + "')")
      .text(1, prompt_id)
      .run();
}

void SqliteQueueStore::clear_history() {
  std::lock_guard lock(impl_->mu);
  Use(impl_->db, impl_->where, impl_->clear_history, "clear_history").run();
}

namespace {

json parse_stored(const std::string& where, const std::string& text, const char* column,
                  const std::string& prompt_id) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw std::runtime_error(where + ": stored " + column + " of '" + prompt_id +
                             "' is not valid JSON: " + e.what());
  }
}

}  // namespace

std::vector<QueueItem> SqliteQueueStore::load_queue() {
  std::lock_guard lock(impl_->mu);
  Impl& m = *impl_;
  std::vector<QueueItem> items;
  Use use(m.db, m.where, m.load_queue, "load_queue");
  while (use.step()) {
    sqlite3_stmt* st = use.get();
    QueueItem item;
    item.prompt_id = column_text(st, 0);
    item.number = sqlite3_column_double(st, 1);
    item.prompt = parse_stored(m.where, column_text(st, 2), "prompt", item.prompt_id);
    item.extra_data = parse_stored(m.where, column_text(st, 3), "extra_data", item.prompt_id);
    json outputs = parse_stored(m.where, column_text(st, 4), "outputs", item.prompt_id);
    if (!outputs.is_array()) {
      throw std::runtime_error(m.where + ": stored outputs of '" + item.prompt_id +
                               "' is not an array");
    }
    for (const json& o : outputs) {
      if (!o.is_string()) {
        throw std::runtime_error(m.where + ": stored outputs of '" + item.prompt_id +
                                 "' holds a non-string: " + o.dump());
      }
      item.outputs.push_back(o.get<std::string>());
    }
    items.push_back(std::move(item));
  }
  return items;
}

std::vector<std::pair<std::string, json>> SqliteQueueStore::load_history() {
  std::lock_guard lock(impl_->mu);
  Impl& m = *impl_;
  std::vector<std::pair<std::string, json>> entries;
  Use use(m.db, m.where, m.load_history, "load_history");
  while (use.step()) {
    std::string id = column_text(use.get(), 0);
    json entry = parse_stored(m.where, column_text(use.get(), 1), "history entry", id);
    entries.emplace_back(std::move(id), std::move(entry));
  }
  return entries;
}

}  // namespace comfy
