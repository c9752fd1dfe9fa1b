// A minimal reader for the zip archives torch.save writes (PyTorchStreamWriter: every entry
// stored, never compressed; zip64 records when the archive is large). It lists the entries of
// a buffer already in memory (usually a read-only mapping) and gives each entry's bytes as a
// span of that buffer; it never copies, never inflates, and checks every offset it reads
// against the buffer before using it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace comfy::io {

struct ZipEntry {
  std::string name;
  uint64_t data_offset = 0;  // where the entry's bytes start in the buffer
  uint64_t size = 0;         // stored (= uncompressed) size
  uint16_t method = 0;       // 0: stored
};

// True when the buffer starts with a zip local file header ("PK\3\4").
bool looks_like_zip(const uint8_t* data, std::size_t size);

// The entries listed by the central directory. Throws ComfyError ("RuntimeError") naming
// `what` (the file) when the archive is truncated or corrupt, or when an entry is compressed.
std::vector<ZipEntry> read_zip_entries(const uint8_t* data, std::size_t size, const std::string& what);

}  // namespace comfy::io
