// What a model file's header says about it, without torch: the kind its folder stands for, the
// family a LoRA (or any state dict whose tensor names tell it) was made for, its title and trigger
// words from the trainer's metadata, and a bounded reader of a safetensors header. Shared by
// `comfycpp models info` (cli/models.cpp, which adds torch's shape-based detection on top) and
// GET /models/info (server/handlers/model_info.cpp, which links no torch). Everything here works
// on plain data: tensor names, dtype strings and shapes, and the metadata JSON.
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "core/json.h"

namespace comfy {

// One tensor as a header lists it: name, the file's dtype string ("F16", "Q4_K", ...), shape in
// PyTorch order.
struct TensorEntry {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
};

// The safetensors header: "__metadata__" (an object; empty when the file has none) and the
// tensors in the order the header lists them.
struct SafetensorsHeader {
  json metadata = json::object();
  std::vector<TensorEntry> tensors;
};

// Largest header accepted: the reference library's MAX_HEADER_SIZE.
inline constexpr uint64_t kMaxSafetensorsHeader = 100'000'000;

// Reads only the header of `file` (u64 little-endian length N, then N bytes of JSON). Throws
// ComfyError naming the file when it is shorter than 8 bytes, N does not fit the file or exceeds
// kMaxSafetensorsHeader, the JSON is not an object, or a tensor entry has no dtype string or
// no shape of non-negative integers.
SafetensorsHeader read_safetensors_header(const std::filesystem::path& file);

// Count, dtype histogram and parameter count of a tensor list.
struct TensorSummary {
  std::size_t count = 0;
  std::map<std::string, int64_t> dtypes;
  int64_t parameters = 0;
};
TensorSummary summarize_tensors(const std::vector<TensorEntry>& tensors);

// The extension of `file`, lower-cased (".safetensors", ".gguf", ...), as the readers are chosen by it.
std::string lower_extension(const std::filesystem::path& file);

// What a model folder holds, in words ("loras" -> "LoRA"); legacy names ("unet", "clip") as
// their ComfyUI folder; an unknown folder is returned as it is.
std::string kind_of_folder(const std::string& folder);

// The family a model-name or architecture string names ("sdxl_base_v1-0" -> "SDXL"), as ComfyUI's
// supported_models class names: Flux, SD3, SDXL, SD20, SD15; "" when it names none.
std::string family_from_text(const std::string& text);

// The family the tensor names tell: text-encoder 2 (lora_te1_/lora_te2_, conditioner.embedders.1)
// SDXL; double/single blocks Flux; joint_blocks SD3; else the width of the cross-attention key
// weight (attn2 to_k; 768 SD15, 1024 SD20, 2048 SDXL). "" when they do not say.
std::string family_from_tensors(const std::vector<TensorEntry>& tensors);

// The family and where it was read: "tensors", or the metadata key (modelspec.architecture,
// ss_base_model_version, ss_sd_model_name, tried in that order after the tensors).
struct FamilyGuess {
  std::string family;  // "" when nothing tells it
  std::string from;
};
FamilyGuess lora_family(const std::vector<TensorEntry>& tensors, const json& metadata);

// Trigger words: modelspec.trigger_phrase split at commas, else the (at most 10) most frequent
// kohya training tags of ss_tag_frequency summed over its folders. An array, maybe empty.
json trigger_words(const json& metadata);

// modelspec.title, else ss_output_name; null when neither is a string.
json model_title(const json& metadata);

}  // namespace comfy
