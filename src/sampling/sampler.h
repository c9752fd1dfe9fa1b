// SAMPLER and the contract between a sampler and the model it samples. ComfyUI's KSAMPLER
// (comfy/samplers.py) wraps a k-diffusion sampling function: it scales the noise for the first
// sigma, applies the inpainting mask around every model call (KSamplerX0Inpaint), runs the
// function over the sigmas and un-scales the result. The model side (CFGGuider: conditioning,
// CFG, areas and masks) is a Denoiser; samplers see nothing else of it.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "graph/value.h"
#include "sampling/model_sampling.h"

namespace comfy {

// The guided model: denoised = D(x, sigma) for a noisy latent x [B,C,H,W] at sigma [B].
class Denoiser {
 public:
  virtual ~Denoiser() = default;
  virtual at::Tensor operator()(const at::Tensor& x, const at::Tensor& sigma) = 0;
  virtual const ModelSampling& model_sampling() const = 0;
  // The *_cfg_pp samplers read the unconditional prediction of the last call (ComfyUI installs a
  // sampler_post_cfg_function with disable_cfg1_optimization=True): after capture_uncond(true),
  // every call also computes the negative, even at cfg 1, and keeps it for last_uncond_denoised().
  virtual void capture_uncond(bool on) = 0;
  virtual at::Tensor last_uncond_denoised() const = 0;
};

// What a sampling function reports after each step (k-diffusion's callback dict).
struct SamplerStep {
  int64_t i = 0;            // step index
  at::Tensor x, denoised;   // current sample and the model's denoised prediction
  double sigma = 0, sigma_hat = 0;
};

struct SamplerRun {
  uint64_t seed = 0;  // the KSampler seed (ancestral noise and Brownian trees derive from it)
  std::function<void(const SamplerStep&)> callback;  // may throw InterruptedError
};

// Sampler options as ComfyUI's sampler nodes set them (eta, s_noise, r, order, max_order, ...):
// names are the keyword arguments of the k-diffusion function, missing ones take ComfyUI's
// defaults. Booleans are 0/1 (use_pece, simple_order_2). Two options stand for callables:
// er_sde's noise_scaler of SamplerER_SDE "Reverse-time SDE"/"ODE" is "noise_scaler_eta" (x **
// (eta + 1); absent: the ER-SDE default), and sa_solver's tau_func is built from "eta",
// "sde_start_percent" and "sde_end_percent" (SamplerSASolver's inputs; defaults 1, 0.2, 0.8).
using SamplerOptions = std::map<std::string, double>;
// The options that are words (solver_type "midpoint"/"heun", "phi_1"/"phi_2"; deis_mode "tab"/"rhoab").
using SamplerTextOptions = std::map<std::string, std::string>;

class Sampler : public Object {
 public:
  Sampler(std::string name, SamplerOptions options, SamplerTextOptions text_options = {},
          bool random_inpaint_noise = false)
      : name_(std::move(name)), options_(std::move(options)), text_options_(std::move(text_options)),
        random_inpaint_noise_(random_inpaint_noise) {}
  const std::string& name() const { return name_; }
  const SamplerOptions& options() const { return options_; }
  const SamplerTextOptions& text_options() const { return text_options_; }
  // ComfyUI's Sampler.max_denoise: the first sigma is (within 1e-5 relative) the model's largest
  // or above it. Pass this as sample()'s max_denoise.
  static bool max_denoise(const ModelSampling& sampling, const at::Tensor& sigmas);
  std::string repr() const override { return "<comfy.samplers.KSAMPLER object>"; }

  // ComfyUI's KSAMPLER.sample: `latent_image` is already process_in'ed; `denoise_mask`
  // (undefined when not inpainting) is [B?,1?,H,W] resized to the latent; `noise` is the
  // initial noise (zeros when noise is disabled). Returns the sampled latent (process_in space).
  at::Tensor sample(Denoiser& model, const at::Tensor& sigmas, const at::Tensor& noise,
                    const at::Tensor& latent_image, const at::Tensor& denoise_mask,
                    SamplerRun& run, bool max_denoise) const;

 private:
  std::string name_;
  SamplerOptions options_;
  SamplerTextOptions text_options_;
  // inpaint_options {"random": True} ("ddim"): the inpainting mask re-noises the kept area with
  // fresh noise from a generator seeded seed + 1 instead of the initial noise.
  bool random_inpaint_noise_ = false;
};

// KSampler.SAMPLERS, in ComfyUI's order (the sampler_name combo).
const std::vector<std::string>& sampler_names();
// comfy.samplers.sampler_object(name): a SAMPLER for a KSampler sampler_name; ValueError for an
// unknown name.
std::shared_ptr<const Sampler> sampler_object(const std::string& name, SamplerOptions options = {});
// comfy.samplers.ksampler(name, extra_options): the custom-sampling nodes' samplers (any
// k-diffusion function name, e.g. "dpmpp_2m_sde" with solver_type); ValueError if unknown.
std::shared_ptr<const Sampler> ksampler(const std::string& name, SamplerOptions options = {},
                                        SamplerTextOptions text_options = {});
// True for samplers that take one more sigma and drop the second-to-last (dpm_2, uni_pc, ...:
// KSampler.DISCARD_PENULTIMATE_SIGMA_SAMPLERS).
bool discards_penultimate_sigma(const std::string& sampler_name);

}  // namespace comfy
