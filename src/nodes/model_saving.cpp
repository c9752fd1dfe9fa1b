// The savers of comfy_extras/nodes_model_merging.py: CheckpointSave, CLIPSave, VAESave and
// ModelSave. Each writes one safetensors file per model (CLIPSave: one per text encoder) into the
// output directory as "<filename>_<NNNNN>_.safetensors" (folder_paths.get_save_image_path picks
// the counter), atomically (save_safetensors writes a temporary file and renames it).
//
// What is written is what ComfyUI holds in memory on the CPU, patches (LoRA, merges) baked in:
// the UNet in f32 under "model.diffusion_model.", the VAE in f32 under "first_stage_model.", the
// text encoder in fp16 in the checkpoint's layout (models/clip_file.h). Metadata as ComfyUI writes
// it: "modelspec.predict_key" ("epsilon" / "v") for models, then, unless --disable-metadata,
// "prompt" (json.dumps of the prompt, "" without one) and every extra_pnginfo entry as json.dumps
// writes it; CLIPSave adds "format": "pt" first.
#include <c10/core/InferenceMode.h>

#include <cstdio>

#include "graph/execution_context.h"
#include "io/safetensors.h"
#include "models/clip_file.h"
#include "models/clip_model.h"
#include "models/diffusion_model.h"
#include "models/vae_model.h"
#include "nodes/all.h"
#include "nodes/image_save.h"
#include "nodes/node_common.h"

namespace comfy {
namespace {

using StateDict = std::vector<std::pair<std::string, at::Tensor>>;

const char* kCategory = "advanced/model_merging";
const char* kModule = "comfy_extras.nodes_model_merging";

// "prompt" and the extra_pnginfo entries, unless metadata is disabled.
void add_prompt_metadata(json& metadata, const Services& s, const NodeInputs& in) {
  if (s.options.disable_metadata) return;
  const Value& prompt = in["prompt"];
  metadata["prompt"] = prompt.is_none() || prompt.is_object() ? std::string() : python_json_dumps(prompt.data());
  const Value& extra = in["extra_pnginfo"];
  if (!extra.is_object() && extra.data().is_object())
    for (auto& [k, v] : extra.data().items()) metadata[k] = python_json_dumps(v);
}

// The next free "<prefix>_<NNNNN>_.safetensors" in the output directory.
std::filesystem::path output_file(const Services& s, const std::string& filename_prefix) {
  const FolderPaths& f = folders(s);
  FolderPaths::SavePath p = f.get_save_image_path(filename_prefix, f.output_directory());
  char counter[16];
  std::snprintf(counter, sizeof counter, "%05d", p.counter);
  return p.full_output_folder / (p.filename + "_" + counter + "_.safetensors");
}

// A weight as ComfyUI holds it on the CPU: floating weights in f32 (patches applied), others as stored.
at::Tensor f32_weight(const WeightSet& set, const std::string& key) {
  at::Tensor raw = set.raw(key);
  if (!at::isFloatingType(raw.scalar_type())) return raw.contiguous();
  return set.get(key, at::kFloat).contiguous();
}

void add_unet(StateDict& sd, const DiffusionModel& model) {
  for (const std::string& k : model.weights.keys())
    sd.emplace_back("model.diffusion_model." + k, f32_weight(*model.weights.set, model.weights.prefix + k));
  if (model.sampling.prediction() == Prediction::V) sd.emplace_back("v_pred", at::empty({0}, at::kFloat));
}

StateDict vae_state_dict(const Vae& vae) {
  StateDict sd;
  const Weights& w = vae.weights();
  if (!w.set) return sd;  // pixel_space: nothing to save
  for (const std::string& k : w.keys()) sd.emplace_back(k, f32_weight(*w.set, w.prefix + k));
  return sd;
}

// comfy_extras save_checkpoint: the model (and CLIP and VAE when given) in one file.
void save_checkpoint(const Services& s, const NodeInputs& in, const DiffusionModel& model, const ClipModel* clip,
                     const Vae* vae) {
  json metadata = json::object();
  metadata["modelspec.predict_key"] = model.sampling.prediction() == Prediction::V ? "v" : "epsilon";
  add_prompt_metadata(metadata, s, in);
  const std::filesystem::path path = output_file(s, in.get_string("filename_prefix"));
  StateDict sd;
  if (clip)
    for (auto& kv : clip_state_dict_for_checkpoint(*clip)) sd.push_back(std::move(kv));
  if (vae)
    for (auto& [k, t] : vae_state_dict(*vae)) sd.emplace_back("first_stage_model." + k, std::move(t));
  add_unet(sd, model);
  save_safetensors(path, sd, metadata);
}

NodeDef saver(const std::string& name) {
  NodeDef def(name);
  def.display_name(name).category(kCategory).python_module(kModule).output_node();
  return def;
}

NodeDef& prefix_and_hidden(NodeDef& def, const std::string& default_prefix) {
  return def.input("filename_prefix", "STRING", {{"default", default_prefix}})
      .hidden_input("prompt", "PROMPT")
      .hidden_input("extra_pnginfo", "EXTRA_PNGINFO");
}

NodeDef CheckpointSave() {
  NodeDef def = saver("CheckpointSave");
  def.display_name("Save Checkpoint").input("model", "MODEL").input("clip", "CLIP").input("vae", "VAE");
  prefix_and_hidden(def, "checkpoints/ComfyUI");
  return def.run([](ExecutionContext& ctx, const NodeInputs& in) {
    c10::InferenceMode guard;
    const ClipModel* clip = in["clip"].is_none() ? nullptr : &clip_of(in["clip"]);
    const Vae* vae = in["vae"].is_none() ? nullptr : &vae_of(in["vae"]);
    save_checkpoint(ctx.services(), in, model_of(in["model"]), clip, vae);
    return NodeOutput({}, json());
  });
}

NodeDef CLIPSave() {
  NodeDef def = saver("CLIPSave");
  def.input("clip", "CLIP");
  prefix_and_hidden(def, "clip/ComfyUI");
  return def.run([](ExecutionContext& ctx, const NodeInputs& in) {
    c10::InferenceMode guard;
    const Services& s = ctx.services();
    const ClipModel& clip = clip_of(in["clip"]);
    json metadata = json::object();
    if (!s.options.disable_metadata) metadata["format"] = "pt";
    add_prompt_metadata(metadata, s, in);
    // One file per text encoder, named after it ("<prefix>_clip_l"), keys without the encoder's
    // prefix and without "transformer.".
    const std::string name = clip.spec().name;
    StateDict sd;
    for (auto& [k, t] : clip_state_dict(clip)) {
      std::string key = k.substr(name.size() + 1);
      if (key.compare(0, 12, "transformer.") == 0) key = key.substr(12);
      sd.emplace_back(key, std::move(t));
    }
    save_safetensors(output_file(s, in.get_string("filename_prefix") + "_" + name), sd, metadata);
    return NodeOutput({}, json());
  });
}

NodeDef VAESave() {
  NodeDef def = saver("VAESave");
  def.input("vae", "VAE");
  prefix_and_hidden(def, "vae/ComfyUI_vae");
  return def.run([](ExecutionContext& ctx, const NodeInputs& in) {
    c10::InferenceMode guard;
    const Services& s = ctx.services();
    const std::filesystem::path path = output_file(s, in.get_string("filename_prefix"));
    json metadata = json::object();
    add_prompt_metadata(metadata, s, in);
    save_safetensors(path, vae_state_dict(vae_of(in["vae"])), metadata);
    return NodeOutput({}, json());
  });
}

NodeDef ModelSave() {
  NodeDef def = saver("ModelSave");
  def.input("model", "MODEL");
  prefix_and_hidden(def, "diffusion_models/ComfyUI");
  return def.run([](ExecutionContext& ctx, const NodeInputs& in) {
    c10::InferenceMode guard;
    save_checkpoint(ctx.services(), in, model_of(in["model"]), nullptr, nullptr);
    return NodeOutput({}, json());
  });
}

}  // namespace

void register_model_saving(Registry& r) {
  r.add(CheckpointSave());
  r.add(CLIPSave());
  r.add(VAESave());
  r.add(ModelSave());
}

}  // namespace comfy
