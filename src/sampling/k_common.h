// Internal to src/sampling: what every sampling function gets (the inpaint-wrapped model, the
// options, the seed and the step callback) and the small k-diffusion helpers they share.
//
// Exactness: ComfyUI runs these functions with sigmas as 0-dim float32 tensors, so every step
// coefficient is computed in float32 by torch ops. We do the same ops in the same order with
// libtorch. One Python quirk matters: `scalar / tensor` is `tensor.reciprocal() * scalar` in
// torch 1.13 (Tensor.__rdiv__), which rdiv() reproduces.
#pragma once
#include <ATen/ATen.h>

#include <functional>
#include <optional>
#include <string>
#include <utility>

#include "sampling/sampler.h"

namespace comfy::ksampling {

using NoiseSampler = std::function<at::Tensor(const at::Tensor& sigma, const at::Tensor& sigma_next)>;

struct Ctx {
  // KSamplerX0Inpaint around the guided model: x [B,...], sigma [B] -> denoised.
  std::function<at::Tensor(const at::Tensor&, const at::Tensor&)> model;
  Denoiser* denoiser = nullptr;
  const ModelSampling* sampling = nullptr;
  std::optional<uint64_t> seed;
  std::function<void(const SamplerStep&)> callback;
  const SamplerOptions* options = nullptr;
  const SamplerTextOptions* text_options = nullptr;

  double opt(const std::string& name, double fallback) const {
    auto it = options->find(name);
    return it == options->end() ? fallback : it->second;
  }
  std::string text(const std::string& name, const std::string& fallback) const {
    auto it = text_options->find(name);
    return it == text_options->end() ? fallback : it->second;
  }
  // model(x, sigma * s_in) with s_in = ones([B]).
  at::Tensor call(const at::Tensor& x, const at::Tensor& sigma) const {
    return model(x, sigma * x.new_ones({x.size(0)}));
  }
  void report(int64_t i, const at::Tensor& x, const at::Tensor& denoised, const at::Tensor& sigma,
              const at::Tensor& sigma_hat) const {
    if (!callback) return;
    SamplerStep step;
    step.i = i;
    step.x = x;
    step.denoised = denoised;
    step.sigma = sigma.item<double>();
    step.sigma_hat = sigma_hat.item<double>();
    callback(step);
  }
};

// The *_cfg_pp samplers: ask the guider for the unconditional prediction of every call, and
// stop asking when the sampler returns.
class UncondCapture {
 public:
  explicit UncondCapture(Denoiser* d) : d_(d) { d_->capture_uncond(true); }
  ~UncondCapture() { d_->capture_uncond(false); }
  UncondCapture(const UncondCapture&) = delete;
  UncondCapture& operator=(const UncondCapture&) = delete;
  at::Tensor get() const { return d_->last_uncond_denoised(); }

 private:
  Denoiser* d_;
};

using SampleFn = at::Tensor (*)(Ctx&, at::Tensor x, at::Tensor sigmas);

inline at::Tensor rdiv(double scalar, const at::Tensor& t) { return t.reciprocal() * scalar; }
inline bool truth(const at::Tensor& t) { return t.item<bool>(); }
inline float f(const at::Tensor& t) { return t.item<float>(); }

// to_d: the Karras ODE derivative (x - denoised) / sigma.
inline at::Tensor to_d(const at::Tensor& x, const at::Tensor& sigma, const at::Tensor& denoised) {
  return (x - denoised) / sigma;
}

// get_ancestral_step: sigma_down and sigma_up (eta = 0 gives sigma_to and a zero sigma_up).
std::pair<at::Tensor, at::Tensor> get_ancestral_step(const at::Tensor& sigma_from, const at::Tensor& sigma_to,
                                                     double eta = 1.0);
// default_noise_sampler: randn of x's shape from a CPU generator seeded seed + 1 (global RNG
// without a seed).
NoiseSampler default_noise_sampler(const at::Tensor& x, std::optional<uint64_t> seed);
// BrownianTreeNoiseSampler(x, sigma_min, sigma_max, seed) (brownian_tree.cpp).
NoiseSampler brownian_tree_noise_sampler(const at::Tensor& x, const at::Tensor& sigma_min,
                                         const at::Tensor& sigma_max, std::optional<uint64_t> seed);
// sigmas[sigmas > 0].min(), sigmas.max() as 0-dim tensors.
std::pair<at::Tensor, at::Tensor> positive_sigma_range(const at::Tensor& sigmas);

// Families (one file each); nullptr when the name is not theirs.
SampleFn find_k_diffusion(const std::string& name);
SampleFn find_cfg_pp(const std::string& name);
SampleFn find_sde(const std::string& name);
SampleFn find_dpm_solver(const std::string& name);
SampleFn find_multistep(const std::string& name);
SampleFn find_uni_pc(const std::string& name);
SampleFn find_sa_solver(const std::string& name);

}  // namespace comfy::ksampling
