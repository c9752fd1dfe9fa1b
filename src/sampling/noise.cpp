// comfy.sample.prepare_noise: torch.manual_seed(seed) then randn over the latent's shape on the
// CPU generator. torch's mt19937 keeps only the low 32 bits of the seed, which the generator
// does by itself (at::mt19937's constructor takes the seed as uint32).
#include "sampling/noise.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>

#include "core/error.h"

namespace comfy {

at::Tensor prepare_noise(const at::Tensor& latent, uint64_t seed,
                         const std::optional<std::vector<int64_t>>& batch_index) {
  at::Generator gen = at::detail::createCPUGenerator(seed);
  auto opts = at::TensorOptions().dtype(latent.scalar_type());
  // (at::randn locks the generator itself.)
  if (!batch_index || batch_index->empty()) return at::randn(latent.sizes(), gen, opts);
  // One [1,C,...] draw per index up to the largest, each batch item takes its index's draw.
  const auto& inds = *batch_index;
  for (int64_t i : inds)
    if (i < 0) throw ComfyError("ValueError", "prepare_noise: negative batch_index " + std::to_string(i));
  int64_t top = *std::max_element(inds.begin(), inds.end());
  std::vector<int64_t> one(latent.sizes().begin(), latent.sizes().end());
  one[0] = 1;
  std::vector<at::Tensor> draws;
  draws.reserve(static_cast<size_t>(top + 1));
  for (int64_t i = 0; i <= top; ++i) draws.push_back(at::randn(one, gen, opts));
  std::vector<at::Tensor> picked;
  picked.reserve(inds.size());
  for (int64_t i : inds) picked.push_back(draws[static_cast<size_t>(i)]);
  return at::cat(picked, 0);
}

}  // namespace comfy
