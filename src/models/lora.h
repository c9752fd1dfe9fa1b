// LoRA and the other weight adapters of a LoRA file, as ComfyUI 0.8 applies them (comfy/lora.py
// model_lora_keys_unet / model_lora_keys_clip / load_lora, comfy/weight_adapter/, comfy/sd.py
// load_lora_for_models, comfy/model_patcher.py calculate_weight).
//
// A LoRA file is read once into a WeightSet. A key map names, for every LoRA key spelling ComfyUI
// accepts for our SD1/SD2 models (kohya lora_unet_/lora_te_/lora_te1_, diffusers and PEFT names,
// lycoris_, the generic diffusion_model./text_encoders. names), the model weight it patches.
// parse_lora turns the file's tensors into one LoraPatch per weight, and load_lora_for_models puts
// them as lazy WeightPatch layers on new WeightSets: the base sets are never touched, a patched
// weight is computed in f32 when a layer first asks for it and rounded to the set's patch dtype
// (CLIP fp16, the UNet f32, as ComfyUI on the CPU).
#pragma once
#include <ATen/ATen.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "models/weights.h"
#include "nn/unet.h"

namespace comfy {

class ClipModel;
struct DiffusionModel;

// LoRA key (the file's name without its ".lora_up.weight"-style suffix) -> the weight it patches,
// in ComfyUI's state-dict names ("diffusion_model.input_blocks.1.1.proj_in.weight",
// "clip_l.transformer.text_model.encoder.layers.0.mlp.fc1.weight"). Ordered as a Python dict: a key
// set again keeps its first place and takes the new target.
class LoraKeyMap {
 public:
  void set(const std::string& lora_key, const std::string& target);
  const std::string* find(const std::string& lora_key) const;
  const std::vector<std::pair<std::string, std::string>>& entries() const { return entries_; }
  size_t size() const { return entries_.size(); }

 private:
  std::vector<std::pair<std::string, std::string>> entries_;
  std::unordered_map<std::string, size_t> index_;
};

// comfy/utils.py unet_to_diffusers: diffusers UNet names -> ComfyUI UNet names (both without
// "diffusion_model."), for the config's blocks (also names of modules the model may not have, as
// ComfyUI lists them).
std::vector<std::pair<std::string, std::string>> unet_to_diffusers(const UNetConfig& config);

// model_lora_keys_unet for the SD1.x/SD2.x UNet. `unet_keys`: the UNet's state-dict keys without
// "diffusion_model.".
void add_unet_lora_keys(LoraKeyMap& map, const UNetConfig& config, const std::vector<std::string>& unet_keys);
// model_lora_keys_clip. `clip_keys`: the text encoder's state-dict keys as ComfyUI names them
// ("clip_l.transformer.text_model....", "clip_h.transformer....").
void add_clip_lora_keys(LoraKeyMap& map, const std::vector<std::string>& clip_keys);

// One patch of one weight: a weight adapter (LoRA/LoCon, LoHa, LoKr, GLoRA, each with optional
// DoRA) or a plain diff / set, with the tensors as stored in the file.
struct LoraPatch {
  enum class Kind { LoRA, LoHa, LoKr, GLoRA, Diff, Set };
  Kind kind = Kind::Diff;
  // LoRA: up, down, mid (mid undefined unless LoCon CP)
  // LoHa: w1_a, w1_b, w2_a, w2_b, t1, t2 (t1/t2 undefined unless CP)
  // LoKr: w1, w2, w1_a, w1_b, w2_a, w2_b, t2 (each may be undefined)
  // GLoRA: a1, a2, b1, b2
  // Diff / Set: the tensor
  std::vector<at::Tensor> t;
  std::optional<double> alpha;               // the file's `.alpha`, if any
  at::Tensor dora_scale;                     // DoRA magnitude, undefined if none
  std::optional<std::vector<int64_t>> reshape;  // LoRA `.reshape_weight`: pad the weight to this shape
  std::shared_ptr<const WeightSet> source;   // keeps the file's tensors alive

  // ComfyUI's calculate_weight for this one patch: `weight` is the f32 weight (modified in place
  // or replaced), `strength` the LoRA strength. A patch whose shapes do not fit the weight is
  // logged ("ERROR lora <key> ...", as ComfyUI) and leaves the weight unchanged.
  at::Tensor apply(at::Tensor weight, double strength, const std::string& key) const;
};

struct ParsedLora {
  std::vector<std::pair<std::string, LoraPatch>> patches;  // target weight -> patch, dict order
  std::vector<std::string> not_loaded;                     // file keys nothing used, file order
};

// comfy/lora.py load_lora: the patches the key map finds in `lora`. Every key of the file that no
// mapping used is logged as ComfyUI does ("lora key not loaded: KEY") and listed in not_loaded.
// ComfyError naming `file_name` when a pair is incomplete (an up without its down, ...).
ParsedLora parse_lora(const std::shared_ptr<const WeightSet>& lora, const LoraKeyMap& map,
                      const std::string& file_name, bool log_missing = true);

// A LoRA file's tensors (safetensors, memory-mapped). ComfyError naming the file when it is
// missing, not safetensors, truncated or corrupt.
std::shared_ptr<const WeightSet> load_lora_file(const std::filesystem::path& path);

struct LoraResult {
  std::shared_ptr<const DiffusionModel> model;  // null when no model was given
  std::shared_ptr<const ClipModel> clip;        // null when no clip was given
  size_t model_patched = 0;                     // weights of each that got a patch
  size_t clip_patched = 0;
  std::vector<std::string> not_loaded;          // file keys nothing used
};

// comfy/sd.py load_lora_for_models: one key map over the model and the CLIP, the file parsed
// once, the patches put on new sets of each (strengths strength_model / strength_clip). Either
// input may be null (LoraLoaderModelOnly passes no CLIP). Warns naming `file_name` when the file
// patched nothing at all (a LoRA for another model family). The inputs are not modified.
LoraResult load_lora_for_models(const std::shared_ptr<const DiffusionModel>& model,
                                const std::shared_ptr<const ClipModel>& clip,
                                const std::shared_ptr<const WeightSet>& lora, double strength_model,
                                double strength_clip, const std::string& file_name);

}  // namespace comfy
