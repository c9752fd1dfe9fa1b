// KSAMPLER.sample (comfy/samplers.py), the sampler names and the shared k-diffusion helpers.
#include "sampling/sampler.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <set>

#include "core/error.h"
#include "sampling/k_common.h"

namespace comfy {
namespace ksampling {

std::pair<at::Tensor, at::Tensor> get_ancestral_step(const at::Tensor& sigma_from, const at::Tensor& sigma_to,
                                                     double eta) {
  if (eta == 0.0) return {sigma_to, at::zeros_like(sigma_to)};
  at::Tensor candidate =
      (sigma_to.pow(2) * (sigma_from.pow(2) - sigma_to.pow(2)) / sigma_from.pow(2)).pow(0.5) * eta;
  // Python's min(a, b) keeps a unless b < a.
  at::Tensor sigma_up = truth(candidate < sigma_to) ? candidate : sigma_to;
  at::Tensor sigma_down = (sigma_to.pow(2) - sigma_up.pow(2)).pow(0.5);
  return {sigma_down, sigma_up};
}

NoiseSampler default_noise_sampler(const at::Tensor& x, std::optional<uint64_t> seed) {
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
  auto opts = x.options();
  if (!seed) {
    return [shape, opts](const at::Tensor&, const at::Tensor&) { return at::randn(shape, opts); };
  }
  // seed + 1 on the CPU (a Python int: 2^64-1 + 1 would not fit a torch seed; we wrap).
  auto gen = std::make_shared<at::Generator>(at::detail::createCPUGenerator(*seed + 1));
  return [shape, opts, gen](const at::Tensor&, const at::Tensor&) {
    return at::randn(shape, *gen, opts);
  };
}

std::pair<at::Tensor, at::Tensor> positive_sigma_range(const at::Tensor& sigmas) {
  return {sigmas.index({sigmas > 0}).min(), sigmas.max()};
}

}  // namespace ksampling

namespace {

const std::vector<std::string>& ksampler_names() {
  static const std::vector<std::string> names = {
      "euler", "euler_cfg_pp", "euler_ancestral", "euler_ancestral_cfg_pp", "heun", "heunpp2", "exp_heun_2_x0",
      "exp_heun_2_x0_sde", "dpm_2", "dpm_2_ancestral", "lms", "dpm_fast", "dpm_adaptive", "dpmpp_2s_ancestral",
      "dpmpp_2s_ancestral_cfg_pp", "dpmpp_sde", "dpmpp_sde_gpu", "dpmpp_2m", "dpmpp_2m_cfg_pp", "dpmpp_2m_sde",
      "dpmpp_2m_sde_gpu", "dpmpp_2m_sde_heun", "dpmpp_2m_sde_heun_gpu", "dpmpp_3m_sde", "dpmpp_3m_sde_gpu", "ddpm",
      "lcm", "ipndm", "ipndm_v", "deis", "res_multistep", "res_multistep_cfg_pp", "res_multistep_ancestral",
      "res_multistep_ancestral_cfg_pp", "gradient_estimation", "gradient_estimation_cfg_pp", "er_sde", "seeds_2",
      "seeds_3", "sa_solver", "sa_solver_pece"};
  return names;
}

ksampling::SampleFn find_function(const std::string& name) {
  using namespace ksampling;
  for (auto finder : {find_k_diffusion, find_cfg_pp, find_sde, find_dpm_solver, find_multistep, find_uni_pc,
                      find_sa_solver}) {
    if (SampleFn fn = finder(name)) return fn;
  }
  return nullptr;
}

}  // namespace

const std::vector<std::string>& sampler_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v = ksampler_names();
    for (const char* extra : {"ddim", "uni_pc", "uni_pc_bh2"}) v.emplace_back(extra);
    return v;
  }();
  return names;
}

bool discards_penultimate_sigma(const std::string& sampler_name) {
  static const std::set<std::string> names = {"dpm_2", "dpm_2_ancestral", "uni_pc", "uni_pc_bh2"};
  return names.count(sampler_name) > 0;
}

std::shared_ptr<const Sampler> ksampler(const std::string& name, SamplerOptions options,
                                        SamplerTextOptions text_options) {
  if (!find_function(name)) throw ComfyError("ValueError", "unknown sampler " + name);
  return std::make_shared<Sampler>(name, std::move(options), std::move(text_options));
}

std::shared_ptr<const Sampler> sampler_object(const std::string& name, SamplerOptions options) {
  const auto& names = sampler_names();
  if (std::find(names.begin(), names.end(), name) == names.end())
    throw ComfyError("ValueError", "unknown sampler " + name);
  // "ddim" is euler with fresh inpainting noise (inpaint_options {"random": True}).
  if (name == "ddim") return std::make_shared<Sampler>("euler", std::move(options), SamplerTextOptions{}, true);
  return std::make_shared<Sampler>(name, std::move(options));
}

bool Sampler::max_denoise(const ModelSampling& sampling, const at::Tensor& sigmas) {
  double max_sigma = sampling.sigma_max();
  double sigma = sigmas[0].item<float>();
  // math.isclose(max_sigma, sigma, rel_tol=1e-05)
  bool close = std::fabs(max_sigma - sigma) <= 1e-05 * std::max(std::fabs(max_sigma), std::fabs(sigma));
  return close || sigma > max_sigma;
}

at::Tensor Sampler::sample(Denoiser& model, const at::Tensor& sigmas, const at::Tensor& noise,
                           const at::Tensor& latent_image, const at::Tensor& denoise_mask, SamplerRun& run,
                           bool max_denoise) const {
  ksampling::SampleFn fn = find_function(name_);
  if (!fn) throw ComfyError("ValueError", "unknown sampler " + name_);
  const ModelSampling& ms = model.model_sampling();

  // KSamplerX0Inpaint: the noise that re-noises the kept area.
  at::Tensor inpaint_noise = noise;
  if (random_inpaint_noise_) {
    at::Generator gen = at::detail::createCPUGenerator(run.seed + 1);
    inpaint_noise = at::randn(noise.sizes(), gen, at::TensorOptions().dtype(at::kFloat)).to(noise.dtype());
  }

  ksampling::Ctx ctx;
  ctx.denoiser = &model;
  ctx.sampling = &ms;
  ctx.seed = run.seed;
  ctx.callback = run.callback;
  ctx.options = &options_;
  ctx.text_options = &text_options_;
  if (denoise_mask.defined()) {
    at::Tensor mask = denoise_mask;
    at::Tensor latent_mask = 1. - mask;
    ctx.model = [&model, &ms, mask, latent_mask, inpaint_noise, latent_image](const at::Tensor& x,
                                                                               const at::Tensor& sigma) {
      std::vector<int64_t> shape(static_cast<size_t>(inpaint_noise.dim()), 1);
      shape[0] = sigma.size(0);
      at::Tensor kept = ms.noise_scaling(sigma.reshape(shape), inpaint_noise, latent_image, false);
      at::Tensor x_in = x * mask + kept * latent_mask;
      at::Tensor out = model(x_in, sigma);
      return out * mask + latent_image * latent_mask;
    };
  } else {
    ctx.model = [&model](const at::Tensor& x, const at::Tensor& sigma) { return model(x, sigma); };
  }

  at::Tensor x = ms.noise_scaling(sigmas[0], noise, latent_image, max_denoise);
  at::Tensor samples = fn(ctx, x, sigmas);
  return ms.inverse_noise_scaling(sigmas[-1], samples);
}

}  // namespace comfy
