// SHA-256 of a file, streamed (LoadImage/LoadLatent change fingerprints; model hashes).
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

namespace comfy::io {

// Lower-case hex digest of the file's bytes. Throws ComfyError (FileNotFoundError/OSError) when
// the file cannot be read.
std::string sha256_file_hex(const std::filesystem::path& path);

// Called after each chunk with the bytes hashed so far and the file's size when hashing began;
// returning false stops the hash (sha256_file_hex then throws ComfyError "InterruptedError").
using HashProgress = std::function<bool(uint64_t done, uint64_t total)>;
// The same digest, reporting progress after every `chunk` bytes read (the last call has done == total).
std::string sha256_file_hex(const std::filesystem::path& path, const HashProgress& progress,
                            std::size_t chunk = std::size_t{1} << 20);

// Lower-case hex digest of `bytes`.
std::string sha256_hex(std::string_view bytes);

// An incremental SHA-256 (for digests over more than one piece, such as the tensor-data hash).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, std::size_t n);
  void update(std::string_view s) { update(s.data(), s.size()); }
  std::string hex();  // finishes: no update after it

 private:
  void* ctx_;
};

}  // namespace comfy::io
