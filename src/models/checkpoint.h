// Loading model files as ComfyUI's loaders do (comfy/sd.py load_checkpoint_guess_config and
// load_diffusion_model): memory-mapped safetensors, zero copy, the family detected from the
// UNet's key names and shapes (models/model_detection.h).
#pragma once
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "models/clip_model.h"
#include "models/diffusion_model.h"
#include "models/model_detection.h"
#include "models/vae_model.h"
#include "models/weights.h"

namespace comfy {

struct CheckpointOptions {
  bool output_clip = true;
  bool output_vae = true;
  std::vector<std::filesystem::path> embedding_directories;  // for the CLIP (models/embeddings)
};

struct LoadedCheckpoint {
  std::shared_ptr<const DiffusionModel> model;
  std::shared_ptr<const ClipModel> clip;  // null unless output_clip
  std::shared_ptr<const Vae> vae;         // null unless output_vae
};

// The weights of a model file: safetensors memory-mapped; pickled .ckpt/.pt/.pth/.bin/.pkl files
// through the restricted unpickler (io/pickle.h: no code runs, foreign globals are refused);
// anything else that is not safetensors is a clear ComfyError naming the file.
std::shared_ptr<const WeightSet> load_weight_file(const std::filesystem::path& path);

// CheckpointLoaderSimple: MODEL, CLIP and VAE of a full SD1.x/SD2.x checkpoint
// ("model.diffusion_model.", "cond_stage_model.", "first_stage_model.").
LoadedCheckpoint load_checkpoint(const std::filesystem::path& path, const CheckpointOptions& options = {});

// The MODEL of a diffusion-model-only file (UNETLoader): keys without a prefix, or with
// "model.diffusion_model." as ComfyUI also accepts.
std::shared_ptr<const DiffusionModel> load_diffusion_model(const std::filesystem::path& path);

// The MODEL over the UNet at `unet_prefix` of `set` (the family already detected).
std::shared_ptr<const DiffusionModel> make_diffusion_model(const std::shared_ptr<const WeightSet>& set,
                                                           const std::string& unet_prefix,
                                                           const ModelDetection& detected);

}  // namespace comfy
