// The model loaders of nodes.py: CheckpointLoaderSimple (MODEL, CLIP and VAE of one checkpoint).
// Loading maps the file (zero copy); the family comes from the UNet's key names and shapes
// (models/model_detection.h), and anything that is not an SD1.x/SD2.x checkpoint is refused with
// a message naming what the file looks like.
#include <c10/core/InferenceMode.h>

#include "core/error.h"
#include "graph/execution_context.h"
#include "models/checkpoint.h"
#include "models/folder_paths.h"
#include "nodes/all.h"

namespace comfy {
namespace {

std::vector<std::filesystem::path> embedding_dirs(const Services& s) {
  if (!s.folders) return {};
  return s.folders->get_folder_paths("embeddings");
}

NodeDef CheckpointLoaderSimple() {
  return NodeDef("CheckpointLoaderSimple")
      .display_name("Load Checkpoint")
      .category("loaders")
      .description("Loads a diffusion model checkpoint, diffusion models are used to denoise latents.")
      .model_combo("ckpt_name", "checkpoints", {{"tooltip", "The name of the checkpoint (model) to load."}})
      .output("MODEL", {}, "The model used for denoising latents.")
      .output("CLIP", {}, "The CLIP model used for encoding text prompts.")
      .output("VAE", {}, "The VAE model used for encoding and decoding images to and from latent space.")
      .run([](ExecutionContext& ctx, const NodeInputs& in) {
        const Services& s = ctx.services();
        if (!s.folders) throw ComfyError("RuntimeError", "no model folders configured");
        std::filesystem::path path = s.folders->get_full_path_or_raise("checkpoints", in.get_string("ckpt_name"));
        c10::InferenceMode guard;
        CheckpointOptions options;
        options.embedding_directories = embedding_dirs(s);
        LoadedCheckpoint ckpt = load_checkpoint(path, options);
        return NodeOutput({Value(std::static_pointer_cast<const Object>(ckpt.model)),
                           Value(std::static_pointer_cast<const Object>(ckpt.clip)),
                           Value(std::static_pointer_cast<const Object>(ckpt.vae))});
      });
}

}  // namespace

void register_loaders(Registry& r) { r.add(CheckpointLoaderSimple()); }

}  // namespace comfy
