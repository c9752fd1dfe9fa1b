#include "models/model_inspection.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <utility>

#include "core/text.h"
#include "core/error.h"
#include "models/folder_paths.h"

namespace comfy {

namespace fs = std::filesystem;

namespace {

// ASCII lower case (names and extensions are compared without case).
bool has(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

[[noreturn]] void bad_header(const fs::path& file, const std::string& why) {
  throw ComfyError("ValueError", file.string() + " is not a safetensors file: " + why);
}

}  // namespace

SafetensorsHeader read_safetensors_header(const fs::path& file) {
  std::error_code ec;
  const uint64_t size = fs::file_size(file, ec);
  std::ifstream in(file, std::ios::binary);
  if (ec || !in) throw ComfyError("FileNotFoundError", "cannot open " + file.string());
  unsigned char len_bytes[8];
  if (size < 8 || !in.read(reinterpret_cast<char*>(len_bytes), 8))
    bad_header(file, "shorter than its 8-byte header length");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | len_bytes[i];
  if (n > size - 8 || n > kMaxSafetensorsHeader)
    bad_header(file, "header length " + std::to_string(n) + " does not fit the file (" + std::to_string(size) +
                         " bytes; the limit is " + std::to_string(kMaxSafetensorsHeader) + ")");
  std::string text(n, '\0');
  if (!in.read(text.data(), static_cast<std::streamsize>(n))) bad_header(file, "the header is truncated");
  json header = json::parse(text, nullptr, false);
  if (!header.is_object()) bad_header(file, "the header is not a JSON object");

  SafetensorsHeader out;
  for (const auto& [name, v] : header.items()) {
    if (name == "__metadata__") {
      if (v.is_object()) out.metadata = v;
      continue;
    }
    if (!v.is_object() || !v.contains("dtype") || !v["dtype"].is_string() || !v.contains("shape") || !v["shape"].is_array())
      bad_header(file, "tensor '" + name + "' has no dtype string and shape list");
    TensorEntry t{name, v["dtype"].get<std::string>(), {}};
    for (const json& d : v["shape"]) {
      if (!d.is_number_unsigned()) bad_header(file, "tensor '" + name + "' has a shape that is not a list of sizes");
      t.shape.push_back(static_cast<int64_t>(d.get<uint64_t>()));
    }
    out.tensors.push_back(std::move(t));
  }
  return out;
}

TensorSummary summarize_tensors(const std::vector<TensorEntry>& tensors) {
  TensorSummary s;
  s.count = tensors.size();
  for (const TensorEntry& t : tensors) {
    s.dtypes[t.dtype]++;
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    s.parameters += n;
  }
  return s;
}

std::string lower_extension(const fs::path& file) { return ascii_lower(file.extension().string()); }

std::string kind_of_folder(const std::string& folder) {
  static const std::map<std::string, std::string> kinds = {
      {"checkpoints", "checkpoint"},
      {"diffusion_models", "diffusion model"},
      {"vae", "VAE"},
      {"vae_approx", "VAE (approximate)"},
      {"loras", "LoRA"},
      {"controlnet", "ControlNet"},
      {"embeddings", "embedding"},
      {"text_encoders", "text encoder"},
      {"clip_vision", "CLIP vision"},
      {"upscale_models", "upscaler"},
      {"latent_upscale_models", "latent upscaler"},
      {"style_models", "style model"},
      {"gligen", "GLIGEN"},
      {"hypernetworks", "hypernetwork"},
      {"photomaker", "PhotoMaker"},
      {"model_patches", "model patch"},
      {"audio_encoders", "audio encoder"},
      {"classifiers", "classifier"},
  };
  const auto it = kinds.find(FolderPaths::map_legacy(folder));
  return it == kinds.end() ? folder : it->second;
}

std::string family_from_text(const std::string& text) {
  const std::string t = ascii_lower(text);
  if (has(t, "flux")) return "Flux";
  if (has(t, "sd3") || has(t, "stable-diffusion-v3")) return "SD3";
  if (has(t, "xl")) return "SDXL";
  if (has(t, "v2") || has(t, "sd2")) return "SD20";
  if (has(t, "v1") || has(t, "sd1")) return "SD15";
  return "";
}

std::string family_from_tensors(const std::vector<TensorEntry>& tensors) {
  std::string by_width;
  bool width_seen = false;
  for (const TensorEntry& t : tensors) {
    const std::string& k = t.name;
    if (has(k, "lora_te2_") || has(k, "lora_te1_") || has(k, "conditioner.embedders.1")) return "SDXL";
    if (has(k, "double_blocks") || has(k, "single_blocks") || has(k, "single_transformer_blocks")) return "Flux";
    if (has(k, "joint_blocks")) return "SD3";
    // Only the first cross-attention key weight with a known width counts.
    if (width_seen || t.shape.size() != 2) continue;
    const bool to_k = has(k, "attn2.to_k.weight") || ((has(k, "attn2_to_k") || has(k, "attn2.to_k")) &&
                                                      (has(k, "lora_down.weight") || has(k, "lora_A.weight")));
    if (!to_k) continue;
    const int64_t width = t.shape[1];
    by_width = width == 768 ? "SD15" : width == 1024 ? "SD20" : width == 2048 ? "SDXL" : "";
    width_seen = !by_width.empty();
  }
  return by_width;
}

FamilyGuess lora_family(const std::vector<TensorEntry>& tensors, const json& metadata) {
  if (std::string f = family_from_tensors(tensors); !f.empty()) return {f, "tensors"};
  if (!metadata.is_object()) return {};
  for (const char* key : {"modelspec.architecture", "ss_base_model_version", "ss_sd_model_name"}) {
    const auto it = metadata.find(key);
    if (it == metadata.end() || !it->is_string()) continue;
    if (std::string f = family_from_text(it->get<std::string>()); !f.empty()) return {f, key};
  }
  return {};
}

json trigger_words(const json& metadata) {
  json out = json::array();
  if (!metadata.is_object()) return out;
  if (auto it = metadata.find("modelspec.trigger_phrase"); it != metadata.end() && it->is_string()) {
    const std::string s = it->get<std::string>();
    std::size_t start = 0;
    while (start <= s.size()) {
      const std::size_t comma = s.find(',', start);
      std::string w = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      w.erase(0, w.find_first_not_of(' '));
      w.erase(w.find_last_not_of(' ') + 1);
      if (!w.empty()) out.push_back(w);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    if (!out.empty()) return out;
  }
  const auto it = metadata.find("ss_tag_frequency");
  if (it == metadata.end() || !it->is_string()) return out;
  const json freq = json::parse(it->get<std::string>(), nullptr, false);
  if (!freq.is_object()) return out;
  std::map<std::string, int64_t> counts;
  for (const auto& [dir, tags] : freq.items())
    if (tags.is_object())
      for (const auto& [tag, n] : tags.items())
        if (n.is_number()) counts[tag] += n.get<int64_t>();
  std::vector<std::pair<std::string, int64_t>> sorted(counts.begin(), counts.end());
  std::stable_sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  for (std::size_t i = 0; i < sorted.size() && i < 10; ++i) out.push_back(sorted[i].first);
  return out;
}

json model_title(const json& metadata) {
  if (!metadata.is_object()) return nullptr;
  for (const char* key : {"modelspec.title", "ss_output_name"})
    if (auto it = metadata.find(key); it != metadata.end() && it->is_string()) return *it;
  return nullptr;
}

}  // namespace comfy
