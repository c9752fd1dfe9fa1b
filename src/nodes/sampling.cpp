// nodes.py's samplers: KSampler and KSamplerAdvanced (common_ksampler over a CFGGuider).
#include "core/error.h"
#include "graph/execution_context.h"
#include "models/conditioning.h"
#include "models/diffusion_model.h"
#include "models/latent.h"
#include "nodes/all.h"
#include "nodes/latent_preview.h"
#include "nodes/sampling_common.h"
#include "sampling/ksampler.h"
#include "sampling/sampler.h"
#include "sampling/schedulers.h"

namespace comfy {

std::shared_ptr<const DiffusionModel> model_ptr(const Value& v) {
  model_of(v);  // TypeError naming MODEL when it is something else
  return std::static_pointer_cast<const DiffusionModel>(v.object());
}

json seed_opts(json extra) {
  json o = {{"default", 0}, {"min", 0}, {"max", json(UINT64_MAX)}, {"control_after_generate", true}};
  for (auto& [k, v] : extra.items()) o[k] = v;
  return o;
}

namespace {

NodeOutput run_ksampler(ExecutionContext& ctx, const NodeInputs& in, KSamplerArgs args) {
  args.steps = in.get_int("steps");
  args.cfg = in.get_float("cfg");
  args.sampler_name = in.get_string("sampler_name");
  args.scheduler = in.get_string("scheduler");
  std::shared_ptr<const DiffusionModel> model = model_ptr(in["model"]);
  LatentPreviewer previewer = get_previewer(ctx, model->latent_format);
  args.progress = [&ctx, &previewer](int64_t value, int64_t total, const at::Tensor& x0) {
    report_step(ctx, previewer, value, total, x0);
  };
  Latent out = common_ksampler(model, conditioning_of(in["positive"]),
                               conditioning_of(in["negative"]), latent_of(in["latent_image"]), args);
  return NodeOutput({latent_value(std::move(out))});
}

NodeDef KSampler() {
  return NodeDef("KSampler")
      .description("Uses the provided model, positive and negative conditioning to denoise the latent image.")
      .category("sampling")
      .input("model", "MODEL", {{"tooltip", "The model used for denoising the input latent."}})
      .input("seed", "INT", seed_opts({{"tooltip", "The random seed used for creating the noise."}}))
      .input("steps", "INT",
             {{"default", 20}, {"min", 1}, {"max", 10000},
              {"tooltip", "The number of steps used in the denoising process."}})
      .input("cfg", "FLOAT",
             {{"default", 8.0}, {"min", 0.0}, {"max", 100.0}, {"step", 0.1}, {"round", 0.01},
              {"tooltip",
               "The Classifier-Free Guidance scale balances creativity and adherence to the prompt. Higher values "
               "result in images more closely matching the prompt however too high values will negatively impact "
               "quality."}})
      .combo("sampler_name", sampler_names(),
             {{"tooltip",
               "The algorithm used when sampling, this can affect the quality, speed, and style of the generated "
               "output."}})
      .combo("scheduler", scheduler_names(),
             {{"tooltip", "The scheduler controls how noise is gradually removed to form the image."}})
      .input("positive", "CONDITIONING",
             {{"tooltip", "The conditioning describing the attributes you want to include in the image."}})
      .input("negative", "CONDITIONING",
             {{"tooltip", "The conditioning describing the attributes you want to exclude from the image."}})
      .input("latent_image", "LATENT", {{"tooltip", "The latent image to denoise."}})
      .input("denoise", "FLOAT",
             {{"default", 1.0}, {"min", 0.0}, {"max", 1.0}, {"step", 0.01},
              {"tooltip",
               "The amount of denoising applied, lower values will maintain the structure of the initial image "
               "allowing for image to image sampling."}})
      .output("LATENT", std::nullopt, std::string("The denoised latent."))
      .run([](ExecutionContext& ctx, const NodeInputs& in) {
        KSamplerArgs args;
        args.seed = in["seed"].as_uint();
        args.denoise = in.get_float("denoise");
        return run_ksampler(ctx, in, std::move(args));
      });
}

NodeDef KSamplerAdvanced() {
  return NodeDef("KSamplerAdvanced")
      .display_name("KSampler (Advanced)")
      .category("sampling")
      .input("model", "MODEL")
      .combo("add_noise", std::vector<std::string>{"enable", "disable"})
      .input("noise_seed", "INT", seed_opts(json::object()))
      .input("steps", "INT", {{"default", 20}, {"min", 1}, {"max", 10000}})
      .input("cfg", "FLOAT", {{"default", 8.0}, {"min", 0.0}, {"max", 100.0}, {"step", 0.1}, {"round", 0.01}})
      .combo("sampler_name", sampler_names())
      .combo("scheduler", scheduler_names())
      .input("positive", "CONDITIONING")
      .input("negative", "CONDITIONING")
      .input("latent_image", "LATENT")
      .input("start_at_step", "INT", {{"default", 0}, {"min", 0}, {"max", 10000}})
      .input("end_at_step", "INT", {{"default", 10000}, {"min", 0}, {"max", 10000}})
      .combo("return_with_leftover_noise", std::vector<std::string>{"disable", "enable"})
      .output("LATENT")
      .run([](ExecutionContext& ctx, const NodeInputs& in) {
        KSamplerArgs args;
        args.seed = in["noise_seed"].as_uint();
        args.force_full_denoise = in.get_string("return_with_leftover_noise") != "enable";
        args.disable_noise = in.get_string("add_noise") == "disable";
        args.start_step = in.get_int("start_at_step");
        args.last_step = in.get_int("end_at_step");
        args.denoise = 1.0;
        return run_ksampler(ctx, in, std::move(args));
      });
}

}  // namespace

void register_sampling(Registry& r) {
  r.add(KSampler());
  r.add(KSamplerAdvanced());
}

}  // namespace comfy
