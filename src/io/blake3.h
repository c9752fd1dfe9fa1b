// BLAKE3 (the specification at github.com/BLAKE3-team/BLAKE3-specs), written from the paper:
// the three modes (hash, keyed_hash, derive_key) and extendable output. Portable code, no SIMD;
// checked against the published test vectors (tests/fixtures/blake3/test_vectors.json).
// Workflows' `models` entries may name "blake3" as their hash_type; Debian has no library for it.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace comfy::io {

class Blake3 {
 public:
  Blake3();  // the default hash mode
  static Blake3 keyed(const std::array<uint8_t, 32>& key);
  static Blake3 derive_key(const std::string& context);

  void update(const void* data, std::size_t size);
  // `out_len` bytes of output (32 is the default hash); the hasher may keep being updated.
  std::vector<uint8_t> finalize(std::size_t out_len = 32) const;
  std::string hex(std::size_t out_len = 32) const;

 private:
  struct Chunk {
    std::array<uint32_t, 8> cv{};
    uint64_t counter = 0;
    std::array<uint8_t, 64> block{};
    std::size_t block_len = 0;
    int blocks_compressed = 0;
    uint32_t flags = 0;
    std::size_t len() const { return static_cast<std::size_t>(blocks_compressed) * 64 + block_len; }
  };
  struct Output {
    std::array<uint32_t, 8> cv;
    std::array<uint32_t, 16> block;
    uint64_t counter;
    uint32_t block_len;
    uint32_t flags;
  };
  Blake3(const std::array<uint32_t, 8>& key, uint32_t flags);
  Output chunk_output(const Chunk& c) const;
  Output parent_output(const std::array<uint32_t, 8>& left, const std::array<uint32_t, 8>& right) const;
  void push_chunk_cv(std::array<uint32_t, 8> cv, uint64_t total_chunks);

  std::array<uint32_t, 8> key_;
  uint32_t flags_;
  Chunk chunk_;
  std::vector<std::array<uint32_t, 8>> stack_;
};

// Lower-case hex BLAKE3 (32 bytes) of a file's bytes, streamed. `progress`, when given, is called
// with the bytes read so far. Throws ComfyError (FileNotFoundError/OSError).
std::string blake3_file_hex(const std::filesystem::path& path,
                            const std::function<void(uint64_t done)>& progress = {});

}  // namespace comfy::io
