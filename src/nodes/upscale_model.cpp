// comfy_extras/nodes_upscale_model.py: UpscaleModelLoader (an UPSCALE_MODEL from
// models/upscale_models: ESRGAN/RRDBNet or RealESRGAN Compact, models/upscale_model.h) and
// ImageUpscaleWithModel (the model on 512-pixel tiles with a 32-pixel overlap, blended as
// comfy.utils.tiled_scale blends them, one progress tick per tile, clamped to [0,1]).
#include <c10/core/InferenceMode.h>

#include "core/error.h"
#include "core/tensor.h"
#include "graph/execution_context.h"
#include "models/upscale_model.h"
#include "nodes/all.h"
#include "nodes/node_common.h"
#include "nodes/torch_errors.h"

namespace comfy {
namespace {

const json kNone = json::object();  // io.X.Input(name): prints {}

NodeDef upscale_node(const char* name, const char* display, const char* category) {
  return NodeDef(name).schema_v3().display_name(display).category(category).python_module(
      "comfy_extras.nodes_upscale_model");
}

NodeDef UpscaleModelLoader() {
  NodeDef def = upscale_node("UpscaleModelLoader", "Load Upscale Model", "loaders");
  def.v3_combo("model_name", [](const Services& s) {
    return s.list_folder ? s.list_folder("upscale_models") : std::vector<std::string>{};
  }, kNone);
  def.required.back().folder = "upscale_models";  // listed live; part of the cache fingerprint
  return def.output("UPSCALE_MODEL").run([](ExecutionContext& ctx, const NodeInputs& in) {
    std::filesystem::path path = folders(ctx.services()).get_full_path_or_raise("upscale_models", in.get_string("model_name"));
    std::shared_ptr<const UpscaleModel> model = load_upscale_model(path);
    return NodeOutput({Value(std::static_pointer_cast<const Object>(model))});
  });
}

NodeDef ImageUpscaleWithModel() {
  return upscale_node("ImageUpscaleWithModel", "Upscale Image (using Model)", "image/upscaling")
      .input("upscale_model", "UPSCALE_MODEL", kNone)
      .input("image", "IMAGE", kNone)
      .output("IMAGE")
      .run([](ExecutionContext& ctx, const NodeInputs& in) {
        const UpscaleModel& model = upscale_model_of(in["upscale_model"]);
        const at::Tensor& image = tensor_of(in["image"], "IMAGE");
        at::Tensor out = torch_guarded([&] {
          return upscale_with_model(model, image, 512, 32, [&ctx](int64_t done, int64_t total) {
            ctx.progress(static_cast<double>(done), static_cast<double>(total));
          });
        });
        return NodeOutput({tensor_value(std::move(out))});
      });
}

}  // namespace

void register_upscale_model(Registry& r) {
  r.add(UpscaleModelLoader());
  r.add(ImageUpscaleWithModel());
}

}  // namespace comfy
