#include "support/safetensors_read.h"

#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <vector>

#include "core/json.h"

namespace comfy::testing {

std::map<std::string, at::Tensor> read_safetensors_f32(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw std::runtime_error("cannot open " + path);
  std::vector<char> bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  if (bytes.size() < 8) throw std::runtime_error(path + ": too short");
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | static_cast<unsigned char>(bytes[i]);
  if (8 + header_size > bytes.size()) throw std::runtime_error(path + ": bad header size");
  json header = json::parse(std::string(bytes.data() + 8, header_size));
  const char* data = bytes.data() + 8 + header_size;
  size_t data_size = bytes.size() - 8 - header_size;
  std::map<std::string, at::Tensor> out;
  for (auto& [name, info] : header.items()) {
    if (name == "__metadata__") continue;
    if (info["dtype"] != "F32") throw std::runtime_error(path + ": " + name + " is not F32");
    std::vector<int64_t> shape = info["shape"].get<std::vector<int64_t>>();
    size_t begin = info["data_offsets"][0], end = info["data_offsets"][1];
    if (begin > end || end > data_size) throw std::runtime_error(path + ": " + name + " out of bounds");
    at::Tensor t = at::empty(shape, at::kFloat);
    if (static_cast<size_t>(t.numel()) * 4 != end - begin) throw std::runtime_error(path + ": " + name + " size mismatch");
    std::memcpy(t.data_ptr<float>(), data + begin, end - begin);  // little-endian host
    out.emplace(name, t);
  }
  return out;
}

}  // namespace comfy::testing
