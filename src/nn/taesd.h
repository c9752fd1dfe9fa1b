// TAESD, the tiny autoencoder for SD latents (ComfyUI's comfy/taesd/taesd.py), as functions of
// (weights, input). The encoder and decoder are torch Sequentials: the weights are views at
// "taesd_encoder." and "taesd_decoder." with the Sequential's indices ("1.conv.0.weight", ...).
#pragma once
#include <ATen/ATen.h>

#include "models/weights.h"

namespace comfy::nn {

// Latent channels of a TAESD decoder (the in-channels of its first conv, "1.weight").
int64_t taesd_latent_channels(const Weights& decoder);

// Encoder(x * 0.5 + 0.5) / scale + shift for x in [-1,1] [B,3,H,W] -> [B,C,H/8,W/8].
at::Tensor taesd_encode(const Weights& encoder, const at::Tensor& x, double scale, double shift);
// Decoder((z - shift) * scale) * 2 - 1: [B,C,h,w] -> [B,3,8h,8w] in about [-1,1].
at::Tensor taesd_decode(const Weights& decoder, const at::Tensor& z, double scale, double shift);

}  // namespace comfy::nn
