// ComfyUI's CFGGuider and the sampling core around it (comfy/samplers.py): conditioning resolved
// for one sampling run (areas, masks, timestep ranges, the model's extra conds), the batched model
// calls of calc_cond_batch, classifier-free guidance, and CFGGuider.sample, which scales the latent
// in and out and hands a Denoiser to the SAMPLER. A guider is an immutable GUIDER value: every
// run keeps its resolved conds in its own state, so one guider may sample many times.
#pragma once
#include <ATen/ATen.h>

#include <array>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "graph/value.h"
#include "models/conditioning.h"
#include "models/diffusion_model.h"
#include "sampling/sampler.h"

namespace comfy {

// BaseModel.apply_model as the guider calls it: denoised for a batch x at sigma [B] with the
// batch's model conds. The default is DiffusionModel::apply_model; tests give an analytic model.
using ModelApply = std::function<at::Tensor(const at::Tensor& x, const at::Tensor& sigma, const ModelConds& conds)>;

// One conditioning entry as process_conds leaves it (ComfyUI's cond dict after convert_cond,
// resolve_areas_and_cond_masks, calculate_start_end_timesteps and encode_model_conds).
struct SamplingCond {
  at::Tensor c_crossattn;  // CONDCrossAttn
  at::Tensor c_concat;     // CONDNoiseShape (inpainting UNets)
  at::Tensor y;            // CONDRegular (adm)
  std::optional<std::array<int64_t, 4>> area;  // (h, w, y, x) in latent units
  std::optional<double> strength;
  at::Tensor mask;                             // [B,H,W] at the latent size
  std::optional<double> mask_strength;
  std::optional<double> timestep_start, timestep_end;  // sigmas
  std::shared_ptr<const Object> control;
  CondOptions options;  // the entry's original options (concat images, set_area_to_bounds, ...)
};

using SamplingConds = std::vector<SamplingCond>;

// What one sampling run keeps: the processed conds by name in ComfyUI's dict order, and the
// unconditional prediction the *_cfg_pp samplers read.
struct GuiderRun {
  std::vector<std::pair<std::string, SamplingConds>> conds;
  bool capture_uncond = false;  // model_options["disable_cfg1_optimization"] plus the capture
  at::Tensor last_uncond;
  const SamplingConds* get(const std::string& name) const;
};

// comfy.samplers.calc_cond_batch: each list's weighted average prediction over its entries
// (areas, masks, strengths), with compatible entries concatenated into one model call. A null
// list gives zeros.
std::vector<at::Tensor> calc_cond_batch(const ModelApply& apply, const std::vector<const SamplingConds*>& conds,
                                        const at::Tensor& x, const at::Tensor& sigma);

// comfy.samplers.cfg_function without model patches: uncond + (cond - uncond) * scale. Keeps the
// uncond prediction in `run` when capturing.
at::Tensor cfg_function(GuiderRun& run, const at::Tensor& cond_pred, const at::Tensor& uncond_pred, double cond_scale);

// process_conds for the named lists (ComfyUI's dict order) against the initial noise.
std::vector<std::pair<std::string, SamplingConds>> process_conds(
    const DiffusionModel& model, const std::vector<std::pair<std::string, std::vector<CondEntry>>>& conds,
    const at::Tensor& noise, const at::Tensor& latent_image, const at::Tensor& denoise_mask);

// The GUIDER value: CFGGuider and its subclasses.
class Guider : public Object {
 public:
  explicit Guider(std::shared_ptr<const DiffusionModel> model, ModelApply apply = {});
  std::string repr() const override { return "<comfy.samplers.CFGGuider object>"; }

  const DiffusionModel& model() const { return *model_; }
  const std::shared_ptr<const DiffusionModel>& model_ptr() const { return model_; }

  // CFGGuider.sample: returns the sampled latent, unscaled (process_out). `latent_image` is the
  // LATENT's samples, `denoise_mask` its noise_mask (undefined when absent).
  at::Tensor sample(const at::Tensor& noise, const at::Tensor& latent_image, const Sampler& sampler,
                    const at::Tensor& sigmas, const at::Tensor& denoise_mask, SamplerRun& run) const;

  // The guided prediction for one call (CFGGuider.predict_noise).
  virtual at::Tensor predict(GuiderRun& run, const at::Tensor& x, const at::Tensor& sigma) const = 0;

 protected:
  const ModelApply& apply() const { return apply_; }
  // inner_set_conds: the named lists in ComfyUI's order.
  std::vector<std::pair<std::string, std::vector<CondEntry>>> conds_;

 private:
  std::shared_ptr<const DiffusionModel> model_;
  ModelApply apply_;
};

// comfy.samplers.CFGGuider: positive, negative and a cfg scale.
class CFGGuider : public Guider {
 public:
  CFGGuider(std::shared_ptr<const DiffusionModel> model, const Conditioning& positive, const Conditioning& negative,
            double cfg, ModelApply apply = {});
  at::Tensor predict(GuiderRun& run, const at::Tensor& x, const at::Tensor& sigma) const override;

 private:
  double cfg_;
};

// nodes_custom_sampler.Guider_Basic: the positive conditioning alone (cfg 1, no negative).
class BasicGuider : public Guider {
 public:
  BasicGuider(std::shared_ptr<const DiffusionModel> model, const Conditioning& positive, ModelApply apply = {});
  at::Tensor predict(GuiderRun& run, const at::Tensor& x, const at::Tensor& sigma) const override;
};

// nodes_custom_sampler.Guider_DualCFG: cond1 against cond2 (cfg1), cond2 against the negative
// (cfg2), "regular" or "nested".
class DualCFGGuider : public Guider {
 public:
  DualCFGGuider(std::shared_ptr<const DiffusionModel> model, const Conditioning& cond1, const Conditioning& cond2,
                const Conditioning& negative, double cfg1, double cfg2, bool nested, ModelApply apply = {});
  at::Tensor predict(GuiderRun& run, const at::Tensor& x, const at::Tensor& sigma) const override;

 private:
  double cfg1_, cfg2_;
  bool nested_;
};

inline const Guider& guider_of(const Value& v) { return v.as<Guider>("GUIDER"); }

}  // namespace comfy
