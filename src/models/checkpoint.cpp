#include "models/checkpoint.h"

#include <algorithm>
#include <cctype>

#include "core/error.h"
#include "io/pickle.h"
#include "io/safetensors.h"
#include "models/latent_format.h"

namespace comfy {

std::shared_ptr<const WeightSet> load_weight_file(const std::filesystem::path& path) {
  if (io::is_pickle_extension(path)) {
    // The restricted unpickler (io/pickle.h): tensor-rebuild globals only, anything else refused.
    io::PickleCheckpoint ck = io::load_pickle_checkpoint(path);
    std::unordered_map<std::string, at::Tensor> tensors;
    for (auto& [name, t] : ck.tensors) tensors.emplace(name, t);
    return WeightSet::from_tensors(std::move(tensors));
  }
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw ComfyError("FileNotFoundError", "[Errno 2] No such file or directory: '" + path.string() + "'");
  }
  // SafetensorsFile::open names the file and says what is wrong (not safetensors, truncated, ...).
  return WeightSet::from_file(SafetensorsFile::open(path));
}

std::shared_ptr<const DiffusionModel> make_diffusion_model(const std::shared_ptr<const WeightSet>& set,
                                                           const std::string& unet_prefix,
                                                           const ModelDetection& detected) {
  auto model = std::make_shared<DiffusionModel>();
  model->family = detected.family;
  model->unet = detected.unet;
  model->weights = Weights(set, unet_prefix);
  model->sampling = ModelSampling::discrete(detected.prediction);
  model->latent_format = LatentFormat::sd15();  // SD15 and SD20 both use latent_formats.SD15
  return model;
}

LoadedCheckpoint load_checkpoint(const std::filesystem::path& path, const CheckpointOptions& options) {
  std::shared_ptr<const WeightSet> set = load_weight_file(path);
  const std::string prefix = "model.diffusion_model.";
  // Anything that is not a full SD1.x/SD2.x checkpoint is refused here, naming what it looks like.
  const ModelDetection detected = detect_model(set, prefix, path.string());
  LoadedCheckpoint out;
  out.model = make_diffusion_model(set, prefix, detected);
  if (options.output_vae) out.vae = make_vae(Weights(set, "first_stage_model."));
  if (options.output_clip) {
    ClipLoadOptions clip_options;
    clip_options.embedding_directories = options.embedding_directories;
    out.clip = make_clip_from_checkpoint(set, detected.family, clip_options);
  }
  return out;
}

std::shared_ptr<const DiffusionModel> load_diffusion_model(const std::filesystem::path& path) {
  std::shared_ptr<const WeightSet> set = load_weight_file(path);
  const std::string prefix = unet_prefix_of(*set);
  const ModelDetection detected = detect_model(set, prefix, path.string());
  return make_diffusion_model(set, prefix, detected);
}

}  // namespace comfy
