// ESRGAN's RRDBNet (the network spandrel calls "ESRGAN", which ComfyUI's UpscaleModelLoader
// uses), as a function of (weights, input). One network, three key layouts, read in place (no
// key renaming):
//   original ESRGAN   model.0, model.1.sub.<b>.RDB<r>.conv<c>.0, model.1.sub.<nb>, model.<3i>
//                     (the i-th upsample conv), model.<3n+2> (HR conv), model.<3n+4> (last)
//   Real-ESRGAN       conv_first, body.<b>.rdb<r>.conv<c>, conv_body, conv_up<i>, conv_hr, conv_last
//   BSRGAN / RealSR   conv_first, RRDB_trunk.<b>.RDB<r>.conv<c>, trunk_conv, upconv<i>, HRconv, conv_last
// (the newer names may mix: upconv<i>/conv_up<i>, HRconv/conv_hr, as spandrel accepts).
//
// The computation: fea = conv_first(x); trunk = conv_body(RRDB_nb(...RRDB_1(fea))); fea += trunk;
// then per upsample: LeakyReLU(conv(nearest x2)), then LeakyReLU(HR conv), then the last conv.
// A dense block's conv<c> (3x3, padding 1) takes [x, x1..x(c-1)] concatenated; every conv but
// conv5 is followed by LeakyReLU(0.2); a dense block returns conv5*0.2 + x, an RRDB
// rdb3(rdb2(rdb1(x)))*0.2 + x. ESRGAN+ files add a bias-free 1x1 conv1x1 per dense block
// (x2 += conv1x1(x), x4 += x2). Real-ESRGAN's x2/x1 models take a pixel-unshuffled input: the
// first conv has 4x or 16x the output channels (spandrel's rule), the input is reflect-padded to
// a multiple of the factor, unshuffled, and the output cropped.
#pragma once
#include <ATen/ATen.h>

#include <optional>
#include <string>
#include <vector>

#include "models/weights.h"

namespace comfy::nn {

struct RRDBNetConfig {
  enum class Layout { Original, RealESRGAN, BSRGAN };
  Layout layout = Layout::Original;
  int64_t in_nc = 3;    // channels the first conv takes (after unshuffling)
  int64_t out_nc = 3;
  int64_t nf = 64;      // feature channels
  int64_t nb = 23;      // RRDB blocks
  int64_t gc = 32;      // dense-block growth channels
  int64_t upsamples = 2;  // nearest x2 + conv stages
  int64_t shuffle = 1;    // pixel-unshuffle factor of the input (1: none, 2 or 4)
  bool plus = false;      // ESRGAN+ (conv1x1 in the dense blocks)

  // The weight prefixes (each ends with '.'); upsample i (0-based) is ups[i].
  std::string first, trunk, hr, last;
  std::vector<std::string> ups;
  std::string dense_conv(int64_t block, int rdb, int conv) const;  // conv 1..5, rdb 1..3
  std::string conv1x1(int64_t block, int rdb) const;

  // The image's channels in and out, and the net scale: 2^upsamples / shuffle (spandrel's
  // descriptor values).
  int64_t image_in_channels() const { return in_nc / (shuffle * shuffle); }
  int64_t scale() const { return (int64_t{1} << upsamples) / shuffle; }
  std::string describe() const;  // "ESRGAN (Real-ESRGAN keys) 4x, nf 64, nb 23, ..."
};

// The config of an RRDBNet state dict (keys and shapes), or nullopt when none of the three
// layouts' key sets is present (spandrel's detection). A layout that is present but does not
// add up (a missing upsample conv, a block count that disagrees) is a ComfyError.
std::optional<RRDBNetConfig> detect_rrdbnet(const Weights& w);

// x [B, image_in_channels, H, W] f32 -> [B, out_nc, H*scale, W*scale] (no clamping).
at::Tensor rrdbnet_forward(const Weights& w, const RRDBNetConfig& cfg, const at::Tensor& x);

}  // namespace comfy::nn
