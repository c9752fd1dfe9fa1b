// The LoRA loaders of nodes.py: LoraLoader (MODEL and CLIP) and LoraLoaderModelOnly. The patches
// are lazy layers on new weight sets (models/lora.h); the inputs are never changed. Each node keeps
// the last file it read, as ComfyUI's loaded_lora does, so a new strength reloads nothing.
#include <c10/core/InferenceMode.h>

#include "core/error.h"
#include "graph/execution_context.h"
#include "models/clip_model.h"
#include "models/diffusion_model.h"
#include "models/lora.h"
#include "nodes/all.h"
#include "nodes/node_common.h"

namespace comfy {
namespace {

const char* kDescription =
    "LoRAs are used to modify diffusion and CLIP models, altering the way in which latents are denoised such as "
    "applying styles. Multiple LoRA nodes can be linked together.";

json strength_opts(const char* tooltip) {
  json o = {{"default", 1.0}, {"min", -100.0}, {"max", 100.0}, {"step", 0.01}};
  if (tooltip) o["tooltip"] = tooltip;
  return o;
}

// ComfyUI's LoraLoader.loaded_lora: the last file this node read.
struct LastLora {
  std::filesystem::path path;
  std::shared_ptr<const WeightSet> tensors;
};

std::shared_ptr<const WeightSet> lora_tensors(ExecutionContext& ctx, const std::filesystem::path& path) {
  LastLora& last = ctx.node_state<LastLora>();
  if (last.tensors && last.path == path) return last.tensors;
  last = {};
  auto tensors = load_lora_file(path);
  last = {path, tensors};
  return tensors;
}

template <class T>
std::shared_ptr<const T> object_of(const Value& v, const char* type) {
  v.as<T>(type);  // TypeError when the link carries something else
  return std::static_pointer_cast<const T>(v.object());
}

LoraResult run_lora(ExecutionContext& ctx, const NodeInputs& in, bool with_clip, double strength_model,
                    double strength_clip) {
  const std::filesystem::path path = folders(ctx.services()).get_full_path_or_raise("loras", in.get_string("lora_name"));
  c10::InferenceMode guard;
  auto model = object_of<DiffusionModel>(in["model"], "MODEL");
  std::shared_ptr<const ClipModel> clip;
  if (with_clip) clip = object_of<ClipModel>(in["clip"], "CLIP");
  return load_lora_for_models(model, clip, lora_tensors(ctx, path), strength_model, strength_clip, path.string());
}

NodeDef LoraLoader() {
  NodeDef def("LoraLoader");
  def.display_name("Load LoRA")
      .category("loaders")
      .description(kDescription)
      .input("model", "MODEL", {{"tooltip", "The diffusion model the LoRA will be applied to."}})
      .input("clip", "CLIP", {{"tooltip", "The CLIP model the LoRA will be applied to."}})
      .model_combo("lora_name", "loras", {{"tooltip", "The name of the LoRA."}})
      .input("strength_model", "FLOAT",
             strength_opts("How strongly to modify the diffusion model. This value can be negative."))
      .input("strength_clip", "FLOAT", strength_opts("How strongly to modify the CLIP model. This value can be negative."))
      .output("MODEL", {}, "The modified diffusion model.")
      .output("CLIP", {}, "The modified CLIP model.")
      .run([](ExecutionContext& ctx, const NodeInputs& in) {
        const double strength_model = in.get_float("strength_model");
        const double strength_clip = in.get_float("strength_clip");
        if (strength_model == 0 && strength_clip == 0) return NodeOutput({in["model"], in["clip"]});
        LoraResult r = run_lora(ctx, in, true, strength_model, strength_clip);
        return NodeOutput({Value(std::static_pointer_cast<const Object>(r.model)),
                           Value(std::static_pointer_cast<const Object>(r.clip))});
      });
  return def;
}

NodeDef LoraLoaderModelOnly() {
  NodeDef def("LoraLoaderModelOnly");
  def.category("loaders")
      .description(kDescription)
      .input("model", "MODEL")
      .model_combo("lora_name", "loras")
      .input("strength_model", "FLOAT", strength_opts(nullptr))
      .output("MODEL", {}, "The modified diffusion model.")
      .run([](ExecutionContext& ctx, const NodeInputs& in) {
        const double strength_model = in.get_float("strength_model");
        if (strength_model == 0) return NodeOutput({in["model"]});
        LoraResult r = run_lora(ctx, in, false, strength_model, 0.0);
        return NodeOutput({Value(std::static_pointer_cast<const Object>(r.model))});
      });
  // It inherits LoraLoader's OUTPUT_TOOLTIPS, both of them.
  def.output_tooltips.resize(2);
  def.output_tooltips[1] = "The modified CLIP model.";
  return def;
}

}  // namespace

void register_lora(Registry& r) {
  r.add(LoraLoader());
  r.add(LoraLoaderModelOnly());
}

}  // namespace comfy
