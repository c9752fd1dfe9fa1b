// LATENT: ComfyUI's latent dict {"samples", "noise_mask"?, "batch_index"?}. `samples` is
// [B,C,H,W] f32 in the VAE's latent space, unscaled (the model's latent format scales it on the
// way into the sampler and back). Nodes make new Latents; they never modify one in place.
#pragma once
#include <ATen/ATen.h>

#include <optional>
#include <string>
#include <vector>

#include "graph/value.h"

namespace comfy {

struct Latent : Object {
  at::Tensor samples;                              // [B,C,H,W]
  at::Tensor noise_mask;                           // undefined when absent; [B?,1?,H,W] as nodes set it
  std::optional<std::vector<int64_t>> batch_index; // which noise draws each batch item takes
  std::string repr() const override { return "{'samples': tensor(...)}"; }
};

inline Value latent_value(Latent l) { return Value::make(std::move(l)); }
inline const Latent& latent_of(const Value& v) { return v.as<Latent>("LATENT"); }

}  // namespace comfy
