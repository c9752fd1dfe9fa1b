// The GGUF file format (ggml's docs/gguf.md), read memory-mapped and zero-copy. ComfyUI reads
// GGUF only through the ComfyUI-GGUF custom node (unet/diffusion_models and clip/text_encoders);
// this reader gives the header, every key-value pair and the tensor table, and views of a
// tensor's bytes in the mapping. Nothing is allocated from a length the file states before the
// length is checked against the bytes that remain.
//
// Layout (little-endian): "GGUF", u32 version (2 or 3; version 1 used 32-bit counts and is
// refused), u64 tensor count, u64 key-value count; the key-value pairs (a string key, a u32
// value type, the value; a string is a u64 length then bytes; an array is a u32 element type, a
// u64 count, then the elements); the tensor infos (a string name, a u32 dimension count, that
// many u64 dimensions with the fastest-varying first, a u32 ggml type, a u64 offset into the data
// section); padding to `general.alignment` (default 32); the tensor data, each tensor at an
// offset that is a multiple of the alignment.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/json.h"

namespace comfy::io {

// The spec's metadata value types.
enum class GgufType : uint32_t {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};
// "uint32", "string", ...; "array[string]" for an array (its element type given).
std::string gguf_type_name(GgufType type, std::optional<GgufType> element = std::nullopt);

// A ggml tensor type: its name ("F32", "Q8_0", "Q4_K", ...), elements per block and bytes per
// block. nullopt for a number ggml does not (or no longer) define.
struct GgmlType {
  const char* name;
  uint32_t block_size;  // elements
  uint32_t type_size;   // bytes per block
};
std::optional<GgmlType> ggml_type(uint32_t id);

struct GgufTensorInfo {
  std::string name;
  std::vector<uint64_t> dims;  // as stored: dims[0] varies fastest (ggml's ne)
  uint32_t type = 0;           // ggml type id
  uint64_t offset = 0;         // from the start of the data section
  uint64_t nbytes = 0;         // bytes in the file
  std::string type_name() const;
  // PyTorch order (the dims reversed), as ComfyUI-GGUF shapes a tensor.
  std::vector<int64_t> shape() const;
  uint64_t numel() const;
};

struct GgufKeyValue {
  std::string key;
  GgufType type;
  std::optional<GgufType> element;  // arrays only
  json value;  // numbers, bools, strings (invalid UTF-8 replaced by U+FFFD), arrays as arrays
};

class GgufFile {
 public:
  // Maps `path` and validates the whole header: every length and count against the file size,
  // the tensor types and sizes, offsets aligned and inside the file, no duplicate names.
  // Throws ComfyError (ValueError for a corrupt or truncated file, FileNotFoundError/OSError
  // when it cannot be read) naming the file.
  static std::shared_ptr<GgufFile> open(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // where the data section starts
  uint64_t file_size() const;
  // The key-value pairs in file order, and as one JSON object {key: value}.
  const std::vector<GgufKeyValue>& key_values() const { return kvs_; }
  json metadata() const;
  const GgufKeyValue* find_key(const std::string& key) const;
  // A string-valued key, or "".
  std::string get_string(const std::string& key) const;
  // Tensor infos in file order.
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find(const std::string& name) const;
  // The tensor's bytes inside the mapping (zero-copy; valid while this object lives).
  std::string_view tensor_bytes(const std::string& name) const;
  // A zero-copy view: F32/F16/BF16/F64/I8/I16/I32/I64 typed with shape(); any other (quantized)
  // type as its raw bytes, a 1-D uint8 tensor. The view keeps the mapping alive; never write it.
  at::Tensor tensor(const std::string& name) const;

  struct Mapping;

 private:
  GgufFile() = default;
  std::filesystem::path path_;
  std::shared_ptr<Mapping> mapping_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<GgufKeyValue> kvs_;
  std::vector<GgufTensorInfo> tensors_;
  std::unordered_map<std::string, std::size_t> index_;
};

// True when the file starts with the GGUF magic (whatever its extension).
bool is_gguf_file(const std::filesystem::path& path);

}  // namespace comfy::io
