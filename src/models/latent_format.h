// How a family's latents relate to the VAE's (comfy/latent_formats.py): the sampler works on
// latents * scale_factor; previews map latent channels to RGB with latent_rgb_factors.
#pragma once
#include <ATen/ATen.h>

#include <array>
#include <string>
#include <vector>

namespace comfy {

struct LatentFormat {
  int64_t latent_channels = 4;
  double scale_factor = 0.18215;  // SD1.x and SD2.x
  double shift_factor = 0.0;
  // [latent_channels][3] and [3]: rgb = latent · factors + bias (ComfyUI's Latent2RGB preview).
  std::vector<std::array<double, 3>> latent_rgb_factors;
  std::array<double, 3> latent_rgb_factors_bias{0, 0, 0};
  // The TAESD decoder that previews this family (a file in models/vae_approx starting with it).
  std::string taesd_decoder_name = "taesd_decoder";

  at::Tensor process_in(const at::Tensor& latent) const {
    return shift_factor == 0.0 ? latent * scale_factor : (latent - shift_factor) * scale_factor;
  }
  at::Tensor process_out(const at::Tensor& latent) const {
    return shift_factor == 0.0 ? latent / scale_factor : latent / scale_factor + shift_factor;
  }

  static LatentFormat sd15() {
    LatentFormat f;
    f.latent_rgb_factors = {{0.3512, 0.2297, 0.3227},
                            {0.3250, 0.4974, 0.2350},
                            {-0.2829, 0.1762, 0.2721},
                            {-0.2120, -0.2616, -0.7177}};
    return f;
  }
};

}  // namespace comfy
