// The NOISE value of the custom-sampling nodes (nodes_custom_sampler.Noise_RandomNoise and
// Noise_EmptyNoise): how the initial noise of a run is made from the input LATENT.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <string>

#include "graph/value.h"
#include "models/latent.h"
#include "sampling/noise.h"

namespace comfy {

struct NoiseSource : Object {
  uint64_t seed = 0;
  bool empty = false;  // DisableNoise: zeros (its seed is 0)
  std::string repr() const override {
    return empty ? "<comfy_extras.nodes_custom_sampler.Noise_EmptyNoise object>"
                 : "<comfy_extras.nodes_custom_sampler.Noise_RandomNoise object>";
  }
  at::Tensor generate(const Latent& latent) const {
    if (empty) return at::zeros(latent.samples.sizes(), latent.samples.options());
    return prepare_noise(latent.samples, seed, latent.batch_index);
  }
};

inline const NoiseSource& noise_of(const Value& v) { return v.as<NoiseSource>("NOISE"); }

}  // namespace comfy
