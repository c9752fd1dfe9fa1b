#include "store/hash_cache.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <mutex>
#include <stdexcept>

#include "core/error.h"

namespace comfy {

namespace fs = std::filesystem;

namespace {

constexpr const char* kSchema = R"sql(
  CREATE TABLE IF NOT EXISTS file_hash (
    path     TEXT    NOT NULL,
    algo     TEXT    NOT NULL,
    size     INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    digest   TEXT    NOT NULL,
    PRIMARY KEY (path, algo)
  );
  PRAGMA user_version = 1;
)sql";

struct Stat {
  int64_t size = -1;
  int64_t mtime_ns = -1;
  bool operator==(const Stat&) const = default;
};

Stat stat_of(const fs::path& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) {
    throw ComfyError("FileNotFoundError", "[Errno 2] No such file or directory: '" + file.string() + "'");
  }
  return Stat{static_cast<int64_t>(st.st_size),
              static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + static_cast<int64_t>(st.st_mtim.tv_nsec)};
}

}  // namespace

struct HashCache::Impl {
  std::string where;
  sqlite3* db = nullptr;
  std::mutex mu;
  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error(where + ": " + what + ": " + (db ? sqlite3_errmsg(db) : "out of memory"));
  }
  sqlite3_stmt* prepare(const char* sql) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, sql, -1, &st, nullptr) != SQLITE_OK) fail("prepare");
    return st;
  }
  ~Impl() {
    if (db) sqlite3_close(db);
  }
};

HashCache::HashCache(const fs::path& db_file) : impl_(std::make_unique<Impl>()) {
  impl_->where = "hash cache '" + db_file.string() + "'";
  std::error_code ec;
  if (db_file.has_parent_path()) fs::create_directories(db_file.parent_path(), ec);
  if (sqlite3_open_v2(db_file.c_str(), &impl_->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    impl_->fail("open");
  }
  sqlite3_busy_timeout(impl_->db, 5000);
  char* err = nullptr;
  if (sqlite3_exec(impl_->db, kSchema, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    throw std::runtime_error(impl_->where + ": " + msg);
  }
}

HashCache::~HashCache() = default;

std::optional<std::string> HashCache::get(const fs::path& file, const std::string& algo) {
  const std::string key = fs::absolute(file).lexically_normal().string();
  const Stat now = stat_of(file);
  std::lock_guard<std::mutex> lock(impl_->mu);
  sqlite3_stmt* st = impl_->prepare("SELECT digest FROM file_hash WHERE path = ? AND algo = ? AND size = ? AND mtime_ns = ?");
  sqlite3_bind_text(st, 1, key.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 2, algo.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st, 3, now.size);
  sqlite3_bind_int64(st, 4, now.mtime_ns);
  std::optional<std::string> out;
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) impl_->fail("read");
  return out;
}

std::string HashCache::digest(const fs::path& file, const std::string& algo,
                              const std::function<std::string(const fs::path&)>& compute, bool* from_cache) {
  if (auto cached = get(file, algo)) {
    if (from_cache) *from_cache = true;
    return *cached;
  }
  if (from_cache) *from_cache = false;
  const Stat before = stat_of(file);
  std::string digest = compute(file);
  if (!(stat_of(file) == before)) return digest;  // still being written: do not remember it
  const std::string key = fs::absolute(file).lexically_normal().string();
  std::lock_guard<std::mutex> lock(impl_->mu);
  sqlite3_stmt* st = impl_->prepare(
      "INSERT OR REPLACE INTO file_hash (path, algo, size, mtime_ns, digest) VALUES (?, ?, ?, ?, ?)");
  sqlite3_bind_text(st, 1, key.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 2, algo.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st, 3, before.size);
  sqlite3_bind_int64(st, 4, before.mtime_ns);
  sqlite3_bind_text(st, 5, digest.c_str(), -1, SQLITE_TRANSIENT);
  int rc = sqlite3_step(st);
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) impl_->fail("write");
  return digest;
}

}  // namespace comfy
