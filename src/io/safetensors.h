// The safetensors file format (github.com/huggingface/safetensors), read memory-mapped and
// zero-copy, written atomically. ComfyUI reads every .safetensors/.sft file through the
// reference Rust library (comfy/utils.py load_torch_file); this reader accepts what that
// library accepts and refuses what it refuses, and checks a header completely before it
// allocates or maps anything a header claims.
//
// Layout: u64 little-endian N, N bytes of UTF-8 JSON (an object: optional "__metadata__", a map
// of string to string, and one entry {"dtype", "shape", "data_offsets": [begin, end]} per
// tensor, offsets relative to the end of the header), then the tensor bytes (little-endian,
// C order).
//
// Tensors returned by SafetensorsFile::tensor() are views into a read-only shared mapping: they
// keep the mapping alive (their deleter holds it), and they must never be written in place
// (clone first). Weights are data: nothing mutates a loaded tensor.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/json.h"

namespace comfy {

struct TensorInfo {
  std::string dtype;           // the file's dtype string: "F16", "F8_E4M3", ...
  std::vector<int64_t> shape;  // [] for a 0-dim tensor
  uint64_t begin = 0;          // byte range in the data section (after the header)
  uint64_t end = 0;
  uint64_t nbytes() const { return end - begin; }
};

class SafetensorsFile {
 public:
  // Maps `path` and validates its header. Throws ComfyError naming the file when the file
  // cannot be read or its header is corrupt, truncated or hostile.
  static std::shared_ptr<SafetensorsFile> open(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return path_; }
  // The "__metadata__" object (string values only), or an empty object when the file has none.
  const json& metadata() const { return metadata_; }
  // Tensor names in the order the header lists them.
  const std::vector<std::string>& keys() const { return keys_; }
  bool contains(const std::string& key) const { return index_.count(key) != 0; }
  // Throws ComfyError (KeyError) for an unknown key.
  const TensorInfo& info(const std::string& key) const;
  // A zero-copy view of the tensor in its file dtype (F8_E4M3/F8_E5M2 as uint8 bytes: see
  // fp8_to_float32). A tensor whose bytes are not aligned to its element size in the mapping is
  // copied into aligned memory instead (only files from unusual writers have such tensors).
  // U16/U32/U64 are accepted in headers but have no libtorch 1.13 dtype: tensor() throws for them.
  at::Tensor tensor(const std::string& key) const;
  // The mapped file (header included), for checks such as "does this view live in the mapping".
  const uint8_t* mapped_data() const;
  std::size_t mapped_size() const;

  struct Mapping;  // implementation detail, public so the deleters can name it

 private:
  SafetensorsFile() = default;
  std::filesystem::path path_;
  std::shared_ptr<Mapping> mapping_;
  uint64_t data_start_ = 0;  // 8 + N
  json metadata_ = json::object();
  std::vector<std::string> keys_;
  std::unordered_map<std::string, TensorInfo> index_;
};

// Decodes fp8 bytes (a uint8 tensor as SafetensorsFile::tensor returns for these dtypes) to
// float32, per the OCP 8-bit floating point spec: "F8_E4M3" is E4M3FN (bias 7, no infinities,
// S.1111.111 is NaN, max 448); "F8_E5M2" is IEEE-like (bias 15, infinities and NaNs).
at::Tensor fp8_to_float32(const at::Tensor& bytes, const std::string& dtype);
// True for the two fp8 dtype strings.
bool is_fp8_dtype(const std::string& dtype);

// Writes `tensors` to `path` atomically (a temporary file beside it, fsync, rename). The layout
// is the reference library's, so that files match what ComfyUI writes byte for byte: tensors
// sorted by descending dtype alignment (its Dtype order: I64/F64 first ... BOOL last), then by
// name; the header lists "__metadata__" first (when `metadata` is an object; null writes none),
// then the tensors in data order; the header is padded with spaces to a multiple of 8.
// `metadata` values must be strings. Duplicate names are refused.
void save_safetensors(const std::filesystem::path& path,
                      const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const json& metadata = json());

}  // namespace comfy
