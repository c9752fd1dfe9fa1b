// The KL autoencoder of SD1.x/SD2.x (ComfyUI's comfy/ldm/modules/diffusionmodules/model.py
// Encoder/Decoder inside comfy/ldm/models/autoencoder.py AutoencoderKL), as functions of
// (config, weights, input). The weights are a view in the standalone layout: "encoder.*",
// "decoder.*", "quant_conv.*", "post_quant_conv.*".
#pragma once
#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "models/weights.h"

namespace comfy::nn {

struct VaeConfig {
  int64_t ch = 128;                       // out-channels of encoder.conv_in
  std::vector<int64_t> ch_mult{1, 2, 4, 4};
  int64_t num_res_blocks = 2;             // per encoder level (the decoder has one more)
  int64_t z_channels = 4;                 // in-channels of decoder.conv_in
  int64_t embed_dim = 4;                  // in-channels of post_quant_conv
  int64_t in_channels = 3;                // image channels in (encoder.conv_in)
  int64_t out_channels = 3;               // image channels out (decoder.conv_out)
  bool has_encoder = true;                // decoder-only files decode but cannot encode
  // AutoencoderKL has quant_conv/post_quant_conv; ComfyUI builds an AutoencodingEngine without
  // them when a file has no post_quant_conv. Some files keep them under the encoder/decoder
  // ("encoder.quant_conv." / "decoder.post_quant_conv."): these name where they are.
  std::string quant_conv = "quant_conv.";          // empty: none
  std::string post_quant_conv = "post_quant_conv.";  // empty: none

  int64_t num_resolutions() const { return static_cast<int64_t>(ch_mult.size()); }
  // Pixels per latent along each side (8 for SD: three downsamples).
  int64_t compression() const { return int64_t{1} << (num_resolutions() - 1); }
};

// The sizes read from the shapes (the rules of ComfyUI's loader and of the fixture README).
// ComfyError (RuntimeError) naming what is missing when the keys are not a KL autoencoder.
VaeConfig vae_config_from_weights(const Weights& w);

// Encoder -> quant_conv -> DiagonalGaussian mode (the mean: the first embed_dim channels).
// `x` is [B,in_channels,H,W] in [-1,1] (H, W multiples of the compression); returns
// [B,embed_dim,H/c,W/c]. This is first_stage_model.encode as ComfyUI's VAE.encode calls it.
at::Tensor vae_encode(const VaeConfig& cfg, const Weights& w, const at::Tensor& x);

// post_quant_conv -> Decoder: [B,embed_dim,h,w] -> [B,out_channels,h*c,w*c], unclamped.
at::Tensor vae_decode(const VaeConfig& cfg, const Weights& w, const at::Tensor& z);

}  // namespace comfy::nn
