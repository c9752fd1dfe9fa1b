#include "models/checkpoint.h"

#include <algorithm>
#include <cctype>

#include "core/error.h"
#include "io/safetensors.h"
#include "models/latent_format.h"

namespace comfy {

namespace {

std::string lower_ext(const std::filesystem::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext;
}

}  // namespace

std::shared_ptr<const WeightSet> load_weight_file(const std::filesystem::path& path) {
  const std::string ext = lower_ext(path);
  if (ext == ".ckpt" || ext == ".pt" || ext == ".pth" || ext == ".bin" || ext == ".pkl") {
    throw ComfyError("RuntimeError", "ERROR: cannot load " + path.string() +
                                         ": pickled model files (.ckpt, .pt, .pth, .bin) are not supported yet; "
                                         "use the .safetensors version of this model");
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
