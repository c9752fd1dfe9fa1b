// Real-ESRGAN's SRVGGNetCompact (spandrel's "Compact", the realesr-general / animevideo models),
// as a function of (weights, input). Keys body.0 .. body.<2n+2>: conv in->nf, PReLU(nf), then
// (conv nf->nf, PReLU(nf)) x num_conv, then the last conv nf->out*scale^2. The output is
// PixelShuffle(scale) of the last conv plus the input upsampled (nearest) by the scale.
#pragma once
#include <ATen/ATen.h>

#include <optional>
#include <string>

#include "models/weights.h"

namespace comfy::nn {

struct SRVGGCompactConfig {
  int64_t in_nc = 3, out_nc = 3;
  int64_t num_feat = 64;
  int64_t num_conv = 16;
  int64_t scale = 4;
  std::string describe() const;  // "RealESRGAN Compact 4x, nf 64, 16 convs, 3->3 channels"
};

// The config of a Compact state dict, or nullopt when it is not one (spandrel's detection: both
// body.0.weight and body.1.weight). The scale and output channels come from the last conv's
// width as spandrel reads them (scale^2 * out, trying out = in, 3, 4, 1); a width that fits
// none, or a body that is not conv/PReLU pairs, is a ComfyError.
std::optional<SRVGGCompactConfig> detect_srvgg_compact(const Weights& w);

// x [B, in_nc, H, W] f32 -> [B, out_nc, H*scale, W*scale] (no clamping).
at::Tensor srvgg_compact_forward(const Weights& w, const SRVGGCompactConfig& cfg, const at::Tensor& x);

}  // namespace comfy::nn
