// Follows comfy/cldm/cldm.py (ControlNet.forward without the union-ControlNet parts).
#include "nn/controlnet.h"

#include <string>

#include "core/error.h"
#include "nn/layers.h"
#include "nn/unet_blocks.h"
#include "nn/unet_encoder.h"

namespace comfy {
namespace {

std::string str(int64_t i) { return std::to_string(i); }

// input_hint_block: convs at positions 0, 2, ..., 14; strides 2 at 4, 8 and 12; SiLU between.
at::Tensor input_hint_block(const Weights& w, const at::Tensor& hint) {
  at::Tensor h = hint;
  for (int64_t i = 0; i < 8; ++i) {
    const int64_t pos = i * 2;
    const int64_t stride = (pos == 4 || pos == 8 || pos == 12) ? 2 : 1;
    h = nn::conv2d(w.sub(str(pos) + "."), h, stride, 1);
    if (i < 7) h = at::silu(h);
  }
  return h;
}

}  // namespace

ControlNetConfig detect_controlnet_config(const Weights& w) {
  for (const char* key : {"input_hint_block.0.weight", "zero_convs.0.0.weight", "middle_block_out.0.weight"})
    if (!w.has(key)) throw ComfyError("RuntimeError", "not a ControlNet: no '" + w.prefix + key + "'");
  ControlNetConfig c;
  c.unet = detect_unet_config(w);
  c.hint_channels = w.shape("input_hint_block.0.weight").at(1);
  return c;
}

UNetControl controlnet_forward(const ControlNetConfig& cfg, const Weights& w, const at::Tensor& x,
                               const at::Tensor& hint, const at::Tensor& timesteps_in, const at::Tensor& context_in,
                               const std::optional<at::Tensor>& y) {
  const UNetConfig& c = cfg.unet;
  if (x.dim() != 4 || x.size(1) != c.in_channels)
    throw ComfyError("RuntimeError", "ControlNet input must have " + str(c.in_channels) + " channels");
  if (hint.dim() != 4 || hint.size(1) != cfg.hint_channels)
    throw ComfyError("RuntimeError", "ControlNet hint must have " + str(cfg.hint_channels) + " channels, got " +
                                         str(hint.dim() == 4 ? hint.size(1) : -1));
  const int64_t batch = x.size(0);
  at::Tensor timesteps = timesteps_in.reshape({-1});
  if (timesteps.numel() == 1 && batch > 1) timesteps = timesteps.expand({batch});
  at::Tensor context = context_in.to(x.scalar_type());

  at::Tensor emb = unet::timestep_embedding(timesteps, c.model_channels).to(x.scalar_type());
  emb = nn::linear(w.sub("time_embed.2."), at::silu(nn::linear(w.sub("time_embed.0."), emb)));
  at::Tensor guided_hint = input_hint_block(w.sub("input_hint_block."), hint.to(x.scalar_type()));
  if (c.adm_in_channels > 0) {
    if (!y || !y->defined())
      throw ComfyError("ValueError", "y is None, did you try using a controlnet for SDXL on SD1?");
    at::Tensor l = nn::linear(w.sub("label_emb.0.0."), y->to(x.scalar_type()));
    emb = emb + nn::linear(w.sub("label_emb.0.2."), at::silu(l));
  }

  UNetControl out;
  int64_t zero = 0;
  auto zero_conv = [&](const at::Tensor& h) {
    out.output.push_back(nn::conv2d(w.sub("zero_convs." + str(zero++) + ".0."), h, 1, 0));
  };
  at::Tensor h = nn::conv2d(w.sub("input_blocks.0.0."), x, 1, 1);
  h = h + guided_hint;
  guided_hint.reset();
  zero_conv(h);
  h = unet::input_blocks(c, w, h, emb, context, zero_conv);
  h = unet::middle_block(c, w, h, emb, context);
  out.middle.push_back(nn::conv2d(w.sub("middle_block_out.0."), h, 1, 0));
  return out;
}

}  // namespace comfy
