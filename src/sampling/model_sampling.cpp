// ModelSamplingDiscrete with EPS / V_PREDICTION (comfy/model_sampling.py). The tables are built
// with the same torch ops and dtypes as ComfyUI: betas, alphas_cumprod and sigmas in float64,
// then registered as float32 buffers, so every schedule derived from them matches bit for bit.
#include "sampling/model_sampling.h"

#include <cmath>

#include "core/error.h"

namespace comfy {
namespace {

// reshape_sigma: a single sigma broadcasts as a 0-dim tensor, a batch as [B,1,1,...].
at::Tensor reshape_sigma(const at::Tensor& sigma, int64_t ndim) {
  if (sigma.numel() == 1) return sigma.reshape(std::vector<int64_t>{});
  std::vector<int64_t> shape(static_cast<size_t>(ndim), 1);
  shape[0] = sigma.size(0);
  return sigma.view(shape);
}

// ComfyUI's rescale_zero_terminal_snr_sigmas (zsnr models), in the sigmas' own dtype (f64).
at::Tensor rescale_zero_terminal_snr(const at::Tensor& sigmas) {
  at::Tensor alphas_cumprod = (sigmas * sigmas + 1).reciprocal();
  at::Tensor abs = alphas_cumprod.sqrt();
  at::Tensor a0 = abs[0].clone();
  at::Tensor aT = abs[-1].clone();
  abs -= aT;
  abs *= a0 / (a0 - aT);
  at::Tensor alphas_bar = abs.pow(2);
  alphas_bar[-1] = 4.8973451890853435e-08;
  return ((1 - alphas_bar) / alphas_bar).pow(0.5);
}

}  // namespace

ModelSampling ModelSampling::discrete(Prediction prediction, double linear_start, double linear_end,
                                      int64_t timesteps, bool zsnr) {
  if (timesteps < 2) throw ComfyError("ValueError", "model sampling needs at least 2 timesteps");
  // make_beta_schedule("linear"): linspace of the square roots in float64, squared.
  at::Tensor betas = at::linspace(std::pow(linear_start, 0.5), std::pow(linear_end, 0.5), timesteps,
                                  at::TensorOptions().dtype(at::kDouble))
                         .pow(2);
  at::Tensor alphas = 1. - betas;
  at::Tensor alphas_cumprod = at::cumprod(alphas, 0);
  at::Tensor sigmas = ((1 - alphas_cumprod) / alphas_cumprod).pow(0.5);
  if (zsnr) sigmas = rescale_zero_terminal_snr(sigmas);
  ModelSampling ms;
  ms.prediction_ = prediction;
  ms.sigmas_ = sigmas.to(at::kFloat);
  ms.log_sigmas_ = sigmas.log().to(at::kFloat);
  return ms;
}

double ModelSampling::sigma_min() const { return sigmas_[0].item<float>(); }
double ModelSampling::sigma_max() const { return sigmas_[-1].item<float>(); }

at::Tensor ModelSampling::timestep(const at::Tensor& sigma) const {
  // The nearest table entry in log space (an integer timestep, as ComfyUI's argmin).
  at::Tensor log_sigma = sigma.log();
  at::Tensor dists = log_sigma - log_sigmas_.unsqueeze(1);
  return dists.abs().argmin(0).view(sigma.sizes());
}

at::Tensor ModelSampling::sigma(const at::Tensor& timestep) const {
  at::Tensor t = at::clamp(timestep.to(at::kFloat), 0, sigmas_.size(0) - 1);
  at::Tensor low_idx = t.floor().to(at::kLong);
  at::Tensor high_idx = t.ceil().to(at::kLong);
  at::Tensor w = t.frac();
  at::Tensor log_sigma = (1 - w) * log_sigmas_.index({low_idx}) + w * log_sigmas_.index({high_idx});
  return log_sigma.exp();
}

double ModelSampling::percent_to_sigma(double percent) const {
  if (percent <= 0.0) return 999999999.9;
  if (percent >= 1.0) return 0.0;
  percent = 1.0 - percent;
  // torch.tensor(python float) is a float32 scalar.
  return sigma(at::scalar_tensor(percent * 999.0, at::kFloat)).item<float>();
}

at::Tensor ModelSampling::calculate_input(const at::Tensor& sigma, const at::Tensor& noisy) const {
  at::Tensor s = reshape_sigma(sigma, noisy.dim());
  return noisy / (s.pow(2) + 1.0).pow(0.5);
}

at::Tensor ModelSampling::calculate_denoised(const at::Tensor& sigma, const at::Tensor& model_output,
                                             const at::Tensor& model_input) const {
  at::Tensor s = reshape_sigma(sigma, model_output.dim());
  if (prediction_ == Prediction::Eps) return model_input - model_output * s;
  // V_PREDICTION with sigma_data = 1 (the "* 1.0" factors of ComfyUI's formula are exact).
  return model_input / (s.pow(2) + 1.0) - model_output * s / (s.pow(2) + 1.0).pow(0.5);
}

at::Tensor ModelSampling::noise_scaling(const at::Tensor& sigma, const at::Tensor& noise,
                                        const at::Tensor& latent_image, bool max_denoise) const {
  at::Tensor s = reshape_sigma(sigma, noise.dim());
  at::Tensor scaled = max_denoise ? noise * at::sqrt(s.pow(2.0) + 1.0) : noise * s;
  return scaled + latent_image;
}

at::Tensor ModelSampling::inverse_noise_scaling(const at::Tensor& /*sigma*/, const at::Tensor& latent) const {
  return latent;
}

}  // namespace comfy
