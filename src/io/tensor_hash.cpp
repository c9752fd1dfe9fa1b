#include "io/tensor_hash.h"

#include <algorithm>
#include <cstring>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "io/sha256.h"

namespace comfy::io {

namespace {

struct Entry {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  std::string_view bytes;
};

std::string hash_entries(std::vector<Entry>& entries) {
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.name < b.name; });
  Sha256 h;
  for (const Entry& e : entries) {
    std::string head = e.name;
    head.push_back('\0');
    head += e.dtype;
    head.push_back('\0');
    for (std::size_t i = 0; i < e.shape.size(); ++i) head += (i ? "," : "") + std::to_string(e.shape[i]);
    head.push_back('\0');
    uint64_t n = e.bytes.size();
    unsigned char le[8];
    for (int i = 0; i < 8; ++i) le[i] = static_cast<unsigned char>(n >> (8 * i));
    h.update(head);
    h.update(le, 8);
    h.update(e.bytes);
  }
  return h.hex();
}

}  // namespace

std::string tensor_data_sha256(const std::filesystem::path& path) {
  std::vector<Entry> entries;
  if (is_gguf_file(path)) {
    auto f = GgufFile::open(path);
    for (const GgufTensorInfo& t : f->tensors()) entries.push_back({t.name, t.type_name(), t.shape(), f->tensor_bytes(t.name)});
    return hash_entries(entries);
  }
  auto f = SafetensorsFile::open(path);
  const auto* base = reinterpret_cast<const char*>(f->mapped_data());
  uint64_t header = 0;
  std::memcpy(&header, base, 8);  // validated by open()
  const uint64_t data_start = 8 + header;
  for (const std::string& k : f->keys()) {
    const TensorInfo& t = f->info(k);
    entries.push_back({k, t.dtype, t.shape, std::string_view(base + data_start + t.begin, t.nbytes())});
  }
  return hash_entries(entries);
}

}  // namespace comfy::io
