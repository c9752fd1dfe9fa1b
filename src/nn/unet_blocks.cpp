#include "nn/unet_blocks.h"

#include <cmath>

#include "nn/layers.h"

namespace comfy::unet {

at::Tensor res_block(const Weights& w, const at::Tensor& x, const at::Tensor& emb) {
  // in_layers = [GroupNorm, SiLU, conv]; emb_layers = [SiLU, Linear]; out_layers = [GroupNorm,
  // SiLU, Dropout, conv]: the indices below are those Sequential positions in the key names.
  at::Tensor h = nn::group_norm_silu(w.sub("in_layers.0."), x, 32, 1e-5);
  h = nn::conv2d(w.sub("in_layers.2."), h, 1, 1);
  at::Tensor emb_out = nn::linear(w.sub("emb_layers.1."), at::silu(emb)).to(h.scalar_type());
  h = h + emb_out.unsqueeze(-1).unsqueeze(-1);
  h = nn::group_norm_silu(w.sub("out_layers.0."), h, 32, 1e-5);
  h = nn::conv2d(w.sub("out_layers.3."), h, 1, 1);
  at::Tensor skip = w.has("skip_connection.weight") ? nn::conv2d(w.sub("skip_connection."), x) : x;
  return skip + h;
}

namespace {

at::Tensor cross_attention(const Weights& w, const at::Tensor& x, const at::Tensor& context, int64_t heads) {
  at::Tensor q = nn::linear(w.sub("to_q."), x);
  at::Tensor k = nn::linear(w.sub("to_k."), context);
  at::Tensor v = nn::linear(w.sub("to_v."), context);
  return nn::linear(w.sub("to_out.0."), nn::attention(q, k, v, heads));
}

// GEGLU feed-forward: net.0.proj gives [value, gate]; value * gelu(gate) (erf gelu), then net.2.
at::Tensor feed_forward(const Weights& w, const at::Tensor& x) {
  at::Tensor proj = nn::linear(w.sub("net.0.proj."), x);
  auto parts = proj.chunk(2, -1);
  return nn::linear(w.sub("net.2."), parts[0] * at::gelu(parts[1]));
}

at::Tensor transformer_block(const Weights& w, at::Tensor x, const at::Tensor& context, int64_t heads) {
  at::Tensor n = nn::layer_norm(w.sub("norm1."), x, 1e-5);
  x = cross_attention(w.sub("attn1."), n, n, heads) + x;
  n = nn::layer_norm(w.sub("norm2."), x, 1e-5);
  x = cross_attention(w.sub("attn2."), n, context, heads) + x;
  return feed_forward(w.sub("ff."), nn::layer_norm(w.sub("norm3."), x, 1e-5)) + x;
}

}  // namespace

at::Tensor spatial_transformer(const Weights& w, const at::Tensor& x, const at::Tensor& context,
                               int64_t heads, int64_t depth, bool use_linear) {
  const int64_t b = x.size(0), h = x.size(2), wd = x.size(3);
  at::Tensor t = nn::group_norm(w.sub("norm."), x, 32, 1e-6);
  if (!use_linear) t = nn::conv2d(w.sub("proj_in."), t);
  t = t.movedim(1, 3).flatten(1, 2).contiguous();  // [B, H*W, C]
  if (use_linear) t = nn::linear(w.sub("proj_in."), t);
  for (int64_t i = 0; i < depth; ++i) {
    t = transformer_block(w.sub("transformer_blocks." + std::to_string(i) + "."), t, context, heads);
  }
  if (use_linear) t = nn::linear(w.sub("proj_out."), t);
  t = t.reshape({b, h, wd, t.size(-1)}).movedim(3, 1).contiguous();
  if (!use_linear) t = nn::conv2d(w.sub("proj_out."), t);
  return t + x;
}

at::Tensor downsample(const Weights& w, const at::Tensor& x) { return nn::conv2d(w, x, 2, 1); }

at::Tensor upsample(const Weights& w, const at::Tensor& x, int64_t out_h, int64_t out_w) {
  // F.interpolate(size=..., mode="nearest"): source index floor(dst * in/out).
  at::Tensor up = at::upsample_nearest2d(x, {out_h, out_w});
  return nn::conv2d(w, up, 1, 1);
}

at::Tensor timestep_embedding(const at::Tensor& timesteps, int64_t dim, double max_period) {
  const int64_t half = dim / 2;
  // Same operation order as ComfyUI: (-ln(max_period) * arange) / half, exp, all in f32.
  at::Tensor freqs =
      at::exp(at::arange(0, half, at::TensorOptions().dtype(at::kFloat).device(timesteps.device()))
                  .mul(-std::log(max_period))
                  .div(static_cast<double>(half)));
  at::Tensor args = timesteps.to(at::kFloat).unsqueeze(1) * freqs.unsqueeze(0);
  at::Tensor emb = at::cat({at::cos(args), at::sin(args)}, -1);
  if (dim % 2) emb = at::cat({emb, at::zeros_like(emb.narrow(1, 0, 1))}, -1);
  return emb;
}

}  // namespace comfy::unet
