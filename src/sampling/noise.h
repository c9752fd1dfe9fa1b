// Initial noise exactly as ComfyUI draws it (comfy/sample.py prepare_noise): torch's CPU
// generator seeded with the seed (mt19937 takes its low 32 bits), one randn over the whole
// latent, or per batch_index one [1,C,H,W] draw for each index up to the largest.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <optional>
#include <vector>

namespace comfy {

at::Tensor prepare_noise(const at::Tensor& latent, uint64_t seed,
                         const std::optional<std::vector<int64_t>>& batch_index = std::nullopt);

}  // namespace comfy
