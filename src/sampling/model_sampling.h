// ComfyUI's model sampling (comfy/model_sampling.py): how a family's noise levels map to the
// network's timesteps and how its output becomes a denoised latent. SD1.x and SD2.x use
// ModelSamplingDiscrete (1000 steps, scaled-linear betas 0.00085..0.012) with EPS or V
// prediction. All tensors are f32 as ComfyUI registers its buffers.
#pragma once
#include <ATen/ATen.h>

namespace comfy {

enum class Prediction { Eps, V };

class ModelSampling {
 public:
  // ModelSamplingDiscrete with ComfyUI's defaults ("scaled_linear" beta schedule).
  static ModelSampling discrete(Prediction prediction, double linear_start = 0.00085,
                                double linear_end = 0.012, int64_t timesteps = 1000, bool zsnr = false);

  Prediction prediction() const { return prediction_; }
  const at::Tensor& sigmas() const { return sigmas_; }          // [timesteps] f32
  const at::Tensor& log_sigmas() const { return log_sigmas_; }  // [timesteps] f32
  double sigma_min() const;
  double sigma_max() const;
  double sigma_data() const { return 1.0; }

  at::Tensor timestep(const at::Tensor& sigma) const;  // by interpolation in the log-sigma table
  at::Tensor sigma(const at::Tensor& timestep) const;
  double percent_to_sigma(double percent) const;

  // EPS: x / sqrt(sigma² + 1); V: the same.
  at::Tensor calculate_input(const at::Tensor& sigma, const at::Tensor& noisy) const;
  at::Tensor calculate_denoised(const at::Tensor& sigma, const at::Tensor& model_output,
                                const at::Tensor& model_input) const;
  at::Tensor noise_scaling(const at::Tensor& sigma, const at::Tensor& noise,
                           const at::Tensor& latent_image, bool max_denoise) const;
  at::Tensor inverse_noise_scaling(const at::Tensor& sigma, const at::Tensor& latent) const;

 private:
  Prediction prediction_ = Prediction::Eps;
  at::Tensor sigmas_, log_sigmas_;
};

}  // namespace comfy
