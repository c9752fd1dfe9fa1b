// A cache of model file digests in SQLite, keyed by (path, size, mtime): a file's SHA-256 (or
// BLAKE3) is computed once and reused until the file changes. Lives beside the queue database
// (<user directory>/__comfycpp/model_hashes.sqlite), in its own file so either can be deleted.
//
// Schema (version 1, PRAGMA user_version):
//   file_hash(path TEXT, algo TEXT, size INTEGER, mtime_ns INTEGER, digest TEXT,
//             PRIMARY KEY (path, algo))
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace comfy {

class HashCache {
 public:
  // Opens (creating it and its folder when missing). Throws std::runtime_error naming the file.
  explicit HashCache(const std::filesystem::path& db_file);
  ~HashCache();
  HashCache(const HashCache&) = delete;
  HashCache& operator=(const HashCache&) = delete;

  // The stored digest of `file` for `algo` ("sha256", "blake3") when its size and mtime still
  // match what they were when it was stored; nullopt otherwise.
  std::optional<std::string> get(const std::filesystem::path& file, const std::string& algo);
  // The cached digest, or `compute(file)` stored for next time. A file whose size or mtime
  // changed while it was hashed (still being written) is not stored. `from_cache` says which.
  std::string digest(const std::filesystem::path& file, const std::string& algo,
                     const std::function<std::string(const std::filesystem::path&)>& compute,
                     bool* from_cache = nullptr);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace comfy
