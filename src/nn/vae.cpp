#include "nn/vae.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "nn/attention.h"
#include "nn/layers.h"
#include "nn/profile.h"

namespace comfy::nn {

namespace {

constexpr int64_t kGroups = 32;  // model.py Normalize: GroupNorm(32, eps=1e-6)
constexpr double kEps = 1e-6;

at::Tensor norm(const Weights& w, const at::Tensor& x) { return group_norm(w, x, kGroups, kEps); }

// A 1x1 projection of the attention block. The original SD VAE stores q/k/v/proj_out as 1x1
// convs [C,C,1,1]; diffusers-converted files store linear [C,C] weights, which ComfyUI's loader
// reshapes on load: both compute the same per-pixel matrix product.
at::Tensor proj1x1(const Weights& w, const at::Tensor& x) {
  auto dtype = x.scalar_type();
  at::Tensor weight = w("weight", dtype);
  if (weight.dim() == 2) weight = weight.reshape({weight.size(0), weight.size(1), 1, 1});
  c10::optional<at::Tensor> bias;
  if (w.has("bias")) bias = w("bias", dtype);
  return at::conv2d(x, weight, bias);
}

at::Tensor norm_silu(const Weights& w, at::Tensor x) { return group_norm_silu_consume(w, std::move(x), kGroups, kEps); }

// ResnetBlock without a timestep embedding (temb_channels = 0 in the autoencoder). x is
// consumed: the block computes in an order that lets each large activation go as soon as it is
// dead (the shortcut first, so that GroupNorm+SiLU can then overwrite x), which bounds the
// decoder's memory at 512x512 and above. The sums are the same as skip + h.
at::Tensor resnet_block(const Weights& w, at::Tensor x) {
  at::Tensor skip;
  if (w.has("nin_shortcut.weight")) skip = conv2d(w.sub("nin_shortcut."), x);
  else if (w.has("conv_shortcut.weight")) skip = conv2d(w.sub("conv_shortcut."), x, 1, 1);
  else skip = x;  // x stays alive as the shortcut, so the norm below writes a new tensor
  at::Tensor h = conv2d_consume(w.sub("conv1."), norm_silu(w.sub("norm1."), std::move(x)), 1, 1);
  // dropout is 0 at inference
  h = conv2d_consume(w.sub("conv2."), norm_silu(w.sub("norm2."), std::move(h)), 1, 1);
  return h.add_(skip);
}

// AttnBlock: single-head self-attention over the H*W pixels, channels as features, scaled by
// C^-0.5. On the CPU fast path the blocked attention (nn/attention) never builds the [HW,HW]
// score matrix; otherwise queries go in slices so that large images do not need it at once
// (ComfyUI's slice_attention does the same; each row's softmax is unchanged).
at::Tensor attn_block(const Weights& w, const at::Tensor& x) {
  at::Tensor h = norm(w.sub("norm."), x);
  const int64_t b = x.size(0), c = x.size(1), hh = x.size(2), ww = x.size(3), n = hh * ww;
  auto tokens = [&](const at::Tensor& t) { return t.reshape({b, c, n}).transpose(1, 2); };  // [B,HW,C]
  at::Tensor q = tokens(proj1x1(w.sub("q."), h)).contiguous();
  at::Tensor k = tokens(proj1x1(w.sub("k."), h)).contiguous();
  at::Tensor v = tokens(proj1x1(w.sub("v."), h)).contiguous();
  // Keep a score slice near 256 MiB.
  const int64_t budget = int64_t{64} << 20;  // floats
  int64_t rows = std::max<int64_t>(1, budget / std::max<int64_t>(1, b * n));
  at::Tensor out;
  if (rows >= n || (paths().attention && c % 8 == 0 && blocked_attention_applies(q, k, v))) {
    out = attention(q, k, v, 1);
  } else {
    std::vector<at::Tensor> parts;
    for (int64_t i = 0; i < n; i += rows)
      parts.push_back(attention(q.narrow(1, i, std::min(rows, n - i)), k, v, 1));
    out = at::cat(parts, 1);
  }
  out = out.transpose(1, 2).reshape({b, c, hh, ww});
  return x + proj1x1(w.sub("proj_out."), out);
}

// Downsample: no asymmetric padding in torch's conv, so pad right/bottom by one, then a 3x3
// conv with stride 2 and no padding.
at::Tensor downsample(const Weights& w, const at::Tensor& x) {
  return conv2d_consume(w.sub("conv."), at::constant_pad_nd(x, {0, 1, 0, 1}, 0), 2, 0);
}

// Upsample: nearest x2, then a 3x3 conv.
at::Tensor upsample(const Weights& w, at::Tensor x) {
  at::Tensor up = at::upsample_nearest2d(x, {x.size(2) * 2, x.size(3) * 2});
  x = at::Tensor();
  return conv2d_consume(w.sub("conv."), std::move(up), 1, 1);
}

// The optional attention after block `i` of a level (attn_resolutions; empty for SD).
at::Tensor maybe_attn(const Weights& level, int64_t i, const at::Tensor& h) {
  std::string a = "attn." + std::to_string(i) + ".";
  return level.has(a + "norm.weight") ? attn_block(level.sub(a), h) : h;
}

std::vector<int64_t> shape_of(const Weights& w, const std::string& key) {
  if (!w.has(key))
    throw ComfyError("RuntimeError", "VAE weights are missing '" + w.prefix + key + "'");
  return w.shape(key);
}

}  // namespace

VaeConfig vae_config_from_weights(const Weights& w) {
  if (!w.has("decoder.conv_in.weight"))
    throw ComfyError("RuntimeError",
                     "ERROR: VAE is invalid: None\n\nIf the VAE is from a checkpoint loader node your checkpoint "
                     "does not contain a valid VAE.");
  VaeConfig cfg;
  auto conv_in = shape_of(w, "decoder.conv_in.weight");
  if (conv_in.size() != 4)
    throw ComfyError("RuntimeError", "unsupported VAE: decoder.conv_in.weight is not a 2-D convolution");
  cfg.z_channels = conv_in[1];

  int64_t levels = 0;
  while (w.has("decoder.up." + std::to_string(levels) + ".block.0.conv2.weight")) ++levels;
  if (levels == 0) throw ComfyError("RuntimeError", "VAE weights are missing '" + w.prefix + "decoder.up.0.block.0.conv2.weight'");
  int64_t blocks = 0;
  while (w.has("decoder.up.0.block." + std::to_string(blocks) + ".conv2.weight")) ++blocks;
  cfg.num_res_blocks = blocks - 1;
  if (cfg.num_res_blocks < 1) throw ComfyError("RuntimeError", "unsupported VAE: decoder.up.0 has fewer than 2 blocks");

  cfg.has_encoder = w.has("encoder.conv_in.weight");
  if (cfg.has_encoder) {
    auto e = shape_of(w, "encoder.conv_in.weight");
    cfg.ch = e[0];
    cfg.in_channels = e[1];
  } else {
    cfg.ch = shape_of(w, "decoder.up.0.block.0.conv2.weight")[0];  // ch_mult[0] is 1 in every KL VAE
  }
  cfg.ch_mult.clear();
  for (int64_t i = 0; i < levels; ++i) {
    int64_t out = shape_of(w, "decoder.up." + std::to_string(i) + ".block.0.conv2.weight")[0];
    if (out % cfg.ch != 0) throw ComfyError("RuntimeError", "unsupported VAE: level widths are not multiples of ch");
    cfg.ch_mult.push_back(out / cfg.ch);
  }
  cfg.out_channels = shape_of(w, "decoder.conv_out.weight")[0];

  // quant convs: top level (AutoencoderKL), inside encoder/decoder (renamed by ComfyUI), or none.
  if (w.has("post_quant_conv.weight")) {
    cfg.post_quant_conv = "post_quant_conv.";
  } else if (w.has("decoder.post_quant_conv.weight")) {
    cfg.post_quant_conv = "decoder.post_quant_conv.";
  } else {
    cfg.post_quant_conv.clear();
  }
  if (w.has("quant_conv.weight")) cfg.quant_conv = "quant_conv.";
  else if (w.has("encoder.quant_conv.weight")) cfg.quant_conv = "encoder.quant_conv.";
  else cfg.quant_conv.clear();
  cfg.embed_dim = cfg.post_quant_conv.empty() ? cfg.z_channels : shape_of(w, cfg.post_quant_conv + "weight")[1];
  return cfg;
}

at::Tensor vae_encode(const VaeConfig& cfg, const Weights& w, const at::Tensor& x) {
  if (!cfg.has_encoder) throw ComfyError("RuntimeError", "this VAE has no encoder weights ('encoder.conv_in.weight')");
  if (x.dim() != 4 || x.size(1) != cfg.in_channels)
    throw ComfyError("RuntimeError", "VAE encode expects [B," + std::to_string(cfg.in_channels) +
                                         ",H,W] pixels, got " + c10::str(x.sizes()));
  Weights e = w.sub("encoder.");
  at::Tensor h = conv2d(e.sub("conv_in."), x, 1, 1);
  for (int64_t level = 0; level < cfg.num_resolutions(); ++level) {
    Weights down = e.sub("down." + std::to_string(level) + ".");
    for (int64_t i = 0; i < cfg.num_res_blocks; ++i) {
      h = resnet_block(down.sub("block." + std::to_string(i) + "."), std::move(h));
      h = maybe_attn(down, i, h);
    }
    if (level != cfg.num_resolutions() - 1) h = downsample(down.sub("downsample."), h);
  }
  h = resnet_block(e.sub("mid.block_1."), std::move(h));
  h = attn_block(e.sub("mid.attn_1."), h);
  h = resnet_block(e.sub("mid.block_2."), std::move(h));
  h = conv2d_consume(e.sub("conv_out."), norm_silu(e.sub("norm_out."), std::move(h)), 1, 1);
  if (!cfg.quant_conv.empty()) h = conv2d(w.sub(cfg.quant_conv), h);
  // DiagonalGaussianDistribution: mean, logvar = chunk(2, dim=1); the regularizer returns the mode.
  return h.narrow(1, 0, h.size(1) / 2).contiguous();
}

at::Tensor vae_decode(const VaeConfig& cfg, const Weights& w, const at::Tensor& z) {
  if (z.dim() != 4 || z.size(1) != cfg.embed_dim)
    throw ComfyError("RuntimeError", "VAE decode expects a latent [B," + std::to_string(cfg.embed_dim) +
                                         ",h,w], got " + c10::str(z.sizes()));
  at::Tensor h = z;
  if (!cfg.post_quant_conv.empty()) h = conv2d(w.sub(cfg.post_quant_conv), h);
  Weights d = w.sub("decoder.");
  h = conv2d(d.sub("conv_in."), h, 1, 1);
  h = resnet_block(d.sub("mid.block_1."), std::move(h));
  h = attn_block(d.sub("mid.attn_1."), h);
  h = resnet_block(d.sub("mid.block_2."), std::move(h));
  for (int64_t level = cfg.num_resolutions() - 1; level >= 0; --level) {
    Weights up = d.sub("up." + std::to_string(level) + ".");
    for (int64_t i = 0; i < cfg.num_res_blocks + 1; ++i) {
      h = resnet_block(up.sub("block." + std::to_string(i) + "."), std::move(h));
      h = maybe_attn(up, i, h);
    }
    if (level != 0) h = upsample(up.sub("upsample."), std::move(h));
  }
  return conv2d_consume(d.sub("conv_out."), norm_silu(d.sub("norm_out."), std::move(h)), 1, 1);
}

}  // namespace comfy::nn
