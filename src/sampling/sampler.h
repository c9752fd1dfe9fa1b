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

// Sampler options as ComfyUI's sampler nodes set them (eta, s_noise, r, solver_type, ...):
// names are the keyword arguments of the k-diffusion function.
using SamplerOptions = std::map<std::string, double>;

class Sampler : public Object {
 public:
  Sampler(std::string name, SamplerOptions options) : name_(std::move(name)), options_(std::move(options)) {}
  const std::string& name() const { return name_; }
  const SamplerOptions& options() const { return options_; }
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
};

// KSampler.SAMPLERS, in ComfyUI's order (the sampler_name combo).
const std::vector<std::string>& sampler_names();
// comfy.samplers.sampler_object(name): a SAMPLER for a KSampler sampler_name; ValueError for an
// unknown name.
std::shared_ptr<const Sampler> sampler_object(const std::string& name, SamplerOptions options = {});
// True for samplers that take one more sigma and drop the second-to-last (dpm_2, uni_pc, ...:
// KSampler.DISCARD_PENULTIMATE_SIGMA_SAMPLERS).
bool discards_penultimate_sigma(const std::string& sampler_name);

}  // namespace comfy
