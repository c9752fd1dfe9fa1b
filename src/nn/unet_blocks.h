// The blocks ComfyUI's openaimodel.UNetModel is built from, as functions of (weights, input):
// ResBlock, SpatialTransformer (attention.py), Downsample and Upsample. Internal to the UNet
// (and to the ControlNet of issue 7, which reuses the input half).
#pragma once
#include <ATen/ATen.h>

#include "models/weights.h"

namespace comfy::unet {

// ResBlock without scale-shift norm or up/down: GroupNorm(32, eps 1e-5) + SiLU + conv3x3, plus
// the projected timestep embedding, GroupNorm + SiLU + conv3x3, plus the skip (1x1 conv when
// the block changes the channel count, identity otherwise).
at::Tensor res_block(const Weights& w, const at::Tensor& x, const at::Tensor& emb);

// SpatialTransformer: GroupNorm(32, eps 1e-6), proj_in (1x1 conv, or linear when `use_linear`),
// `depth` BasicTransformerBlocks (self-attention, cross-attention on `context`, GEGLU
// feed-forward, each after a LayerNorm eps 1e-5, each residual), proj_out, plus the input.
at::Tensor spatial_transformer(const Weights& w, const at::Tensor& x, const at::Tensor& context,
                               int64_t heads, int64_t depth, bool use_linear);

// Downsample: a 3x3 conv with stride 2 and padding 1 (`w` is the view at "op.").
at::Tensor downsample(const Weights& w, const at::Tensor& x);

// Upsample: nearest to (out_h, out_w) (twice the input unless the skip it meets is odd-sized),
// then a 3x3 conv (`w` is the view at "conv.").
at::Tensor upsample(const Weights& w, const at::Tensor& x, int64_t out_h, int64_t out_w);

// The sinusoidal timestep embedding (util.timestep_embedding, repeat_only=False): [B] -> [B,dim],
// cos half first (flip_sin_to_cos), frequencies exp(-ln(10000)·i/half) computed in f32.
at::Tensor timestep_embedding(const at::Tensor& timesteps, int64_t dim, double max_period = 10000.0);

}  // namespace comfy::unet
