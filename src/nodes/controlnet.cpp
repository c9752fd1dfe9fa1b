// ComfyUI's ControlNet nodes of nodes.py: ControlNetLoader and DiffControlNetLoader (a CONTROL_NET
// from models/controlnet, models/t2i_adapter), ControlNetApply (deprecated: one conditioning, also
// applied to the uncond) and ControlNetApplyAdvanced (positive and negative, a percent range).
// Each apply copies the entries and hangs a new ControlNet on them, chained to the one they had.
#include <map>

#include "core/tensor.h"
#include "graph/execution_context.h"
#include "models/conditioning.h"
#include "models/controlnet_model.h"
#include "nodes/all.h"
#include "nodes/node_common.h"
#include "nodes/torch_errors.h"

namespace comfy {
namespace {

json float_opts(double def, double min, double max, double step) {
  return {{"default", def}, {"min", min}, {"max", max}, {"step", step}};
}

std::shared_ptr<const ControlNet> previous_of(const CondOptions& o) {
  if (!o.control) return nullptr;
  auto p = std::dynamic_pointer_cast<const ControlNet>(o.control);
  if (!p) throw ComfyError("TypeError", "conditioning 'control' is not a CONTROL_NET");
  return p;
}

NodeOutput load(ExecutionContext& ctx, const NodeInputs& in, const DiffusionModel* model) {
  std::filesystem::path path = folders(ctx.services()).get_full_path_or_raise("controlnet", in.get_string("control_net_name"));
  c10::InferenceMode guard;
  auto network = load_controlnet(path, model);
  return NodeOutput({Value(std::static_pointer_cast<const Object>(std::make_shared<const ControlNet>(network)))});
}

NodeDef ControlNetLoader() {
  return NodeDef("ControlNetLoader")
      .display_name("Load ControlNet Model")
      .category("loaders")
      .model_combo("control_net_name", "controlnet")
      .output("CONTROL_NET")
      .run([](ExecutionContext& ctx, const NodeInputs& in) { return load(ctx, in, nullptr); });
}

NodeDef DiffControlNetLoader() {
  return NodeDef("DiffControlNetLoader")
      .display_name("Load ControlNet Model (diff)")
      .category("loaders")
      .input("model", "MODEL")
      .model_combo("control_net_name", "controlnet")
      .output("CONTROL_NET")
      .run([](ExecutionContext& ctx, const NodeInputs& in) { return load(ctx, in, &model_of(in["model"])); });
}

NodeDef ControlNetApply() {
  return NodeDef("ControlNetApply")
      .display_name("Apply ControlNet (OLD)")
      .category("conditioning/controlnet")
      .deprecated()
      .input("conditioning", "CONDITIONING")
      .input("control_net", "CONTROL_NET")
      .input("image", "IMAGE")
      .input("strength", "FLOAT", float_opts(1.0, 0.0, 10.0, 0.01))
      .output("CONDITIONING")
      .run([](ExecutionContext&, const NodeInputs& in) {
        const Conditioning& cond = conditioning_of(in["conditioning"]);
        const double strength = in.get_float("strength");
        if (strength == 0) return NodeOutput({in["conditioning"]});
        const ControlNet& cn = controlnet_of(in["control_net"]);
        return torch_guarded([&] {
          at::Tensor hint = tensor_of(in["image"], "IMAGE").movedim(-1, 1);
          Conditioning out;
          for (const CondEntry& e : cond.entries) {
            CondEntry n = e;
            n.options.control = cn.with_hint(hint, strength, 0.0, 1.0, previous_of(e.options));
            n.options.control_apply_to_uncond = true;
            out.entries.push_back(std::move(n));
          }
          return NodeOutput({conditioning_value(std::move(out))});
        });
      });
}

NodeDef ControlNetApplyAdvanced() {
  return NodeDef("ControlNetApplyAdvanced")
      .display_name("Apply ControlNet")
      .category("conditioning/controlnet")
      .input("positive", "CONDITIONING")
      .input("negative", "CONDITIONING")
      .input("control_net", "CONTROL_NET")
      .input("image", "IMAGE")
      .input("strength", "FLOAT", float_opts(1.0, 0.0, 10.0, 0.01))
      .input("start_percent", "FLOAT", float_opts(0.0, 0.0, 1.0, 0.001))
      .input("end_percent", "FLOAT", float_opts(1.0, 0.0, 1.0, 0.001))
      .optional_input("vae", "VAE")
      .output("CONDITIONING", std::string("positive"))
      .output("CONDITIONING", std::string("negative"))
      .run([](ExecutionContext&, const NodeInputs& in) {
        const double strength = in.get_float("strength");
        if (strength == 0) return NodeOutput({in["positive"], in["negative"]});
        const ControlNet& cn = controlnet_of(in["control_net"]);
        const double start = in.get_float("start_percent"), end = in.get_float("end_percent");
        // The VAE only matters to ControlNets with a latent format (SD3/Flux ones); the SD
        // ControlNets and T2I adapters read the hint in pixels.
        return torch_guarded([&] {
          at::Tensor hint = tensor_of(in["image"], "IMAGE").movedim(-1, 1);
          // One new ControlNet per previous one: positive and negative entries that had the same
          // chain share the new one (and so run in one batch).
          std::map<const Object*, std::shared_ptr<const ControlNet>> cnets;
          std::vector<Value> outs;
          for (const char* name : {"positive", "negative"}) {
            Conditioning out;
            for (const CondEntry& e : conditioning_of(in[name]).entries) {
              CondEntry n = e;
              auto prev = previous_of(e.options);
              auto it = cnets.find(prev.get());
              if (it == cnets.end()) it = cnets.emplace(prev.get(), cn.with_hint(hint, strength, start, end, prev)).first;
              n.options.control = it->second;
              n.options.control_apply_to_uncond = false;
              out.entries.push_back(std::move(n));
            }
            outs.push_back(conditioning_value(std::move(out)));
          }
          return NodeOutput(std::move(outs));
        });
      });
}

}  // namespace

void register_controlnet(Registry& r) {
  r.add(ControlNetLoader());
  r.add(DiffControlNetLoader());
  r.add(ControlNetApply());
  r.add(ControlNetApplyAdvanced());
}

}  // namespace comfy
