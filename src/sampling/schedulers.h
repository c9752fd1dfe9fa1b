// The sigma schedules of ComfyUI's scheduler combo (comfy/samplers.py SCHEDULER_HANDLERS) and the
// custom-sampling schedulers' math (karras, exponential, polyexponential, vp, beta, ...).
#pragma once
#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "sampling/model_sampling.h"

namespace comfy {

// KSampler.SCHEDULERS in ComfyUI's order.
const std::vector<std::string>& scheduler_names();
// comfy.samplers.calculate_sigmas: steps+1 sigmas ending in 0, f32. ValueError for an unknown name.
at::Tensor calculate_sigmas(const ModelSampling& sampling, const std::string& scheduler, int64_t steps);

// KSampler.calculate_sigmas + set_steps: the sigmas a KSampler node samples over. Samplers of
// KSampler.DISCARD_PENULTIMATE_SIGMA_SAMPLERS take one more step and drop the second-to-last
// sigma; denoise < 1 computes int(steps/denoise) steps and keeps the last steps+1 (empty for
// denoise <= 0).
at::Tensor ksampler_sigmas(const ModelSampling& sampling, const std::string& sampler_name,
                           const std::string& scheduler, int64_t steps, double denoise = 1.0);

// The schedules of comfy.samplers (SCHEDULER_HANDLERS) one by one.
at::Tensor simple_scheduler(const ModelSampling& sampling, int64_t steps);
at::Tensor ddim_scheduler(const ModelSampling& sampling, int64_t steps);
at::Tensor normal_scheduler(const ModelSampling& sampling, int64_t steps, bool sgm = false);
at::Tensor beta_scheduler(const ModelSampling& sampling, int64_t steps, double alpha = 0.6, double beta = 0.6);
at::Tensor linear_quadratic_schedule(const ModelSampling& sampling, int64_t steps,
                                     double threshold_noise = 0.025, int64_t linear_steps = -1);
at::Tensor kl_optimal_scheduler(int64_t n, double sigma_min, double sigma_max);

// k-diffusion's schedules (comfy/k_diffusion/sampling.py), f32 with a trailing 0 (laplace has none).
at::Tensor get_sigmas_karras(int64_t n, double sigma_min, double sigma_max, double rho = 7.0);
at::Tensor get_sigmas_exponential(int64_t n, double sigma_min, double sigma_max);
at::Tensor get_sigmas_polyexponential(int64_t n, double sigma_min, double sigma_max, double rho = 1.0);
at::Tensor get_sigmas_vp(int64_t n, double beta_d = 19.9, double beta_min = 0.1, double eps_s = 1e-3);
at::Tensor get_sigmas_laplace(int64_t n, double sigma_min, double sigma_max, double mu = 0.0, double beta = 0.5);

// scipy.stats.beta.ppf(p, a, b): the inverse of the regularized incomplete beta function
// (accurate to ~1e-14). Exposed for tests.
double beta_ppf(double p, double a, double b);
double regularized_incomplete_beta(double x, double a, double b);

}  // namespace comfy
