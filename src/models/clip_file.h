// Text-encoder files on their own (CLIPLoader, comfy/sd.py load_clip and detect_te_model), and
// the CLIP state dicts ComfyUI's savers write (CLIPSave, CheckpointSave: comfy/sd.py CLIP.get_sd,
// supported_models.py process_clip_state_dict_for_saving).
//
// Accepted layouts of a standalone CLIP file, as ComfyUI accepts them:
//   - transformers layout: "text_model.embeddings.*", "text_model.encoder.layers.N.*",
//     "text_model.final_layer_norm.*", optional "text_projection.weight" (or the older
//     "text_projection", [in, out], which CLIPSave used to write);
//   - OpenCLIP layout: "transformer.resblocks.N.*", "token_embedding.weight",
//     "positional_embedding", "ln_final.*", "text_projection" (converted as
//     clip_text_transformers_convert does);
// and, beyond what ComfyUI accepts, the same keys under the prefixes checkpoints and other tools
// put them (the text encoder of a whole checkpoint: "cond_stage_model.transformer.",
// "cond_stage_model.model.", "conditioner.embedders.0.model."; "transformer.", "clip_l.transformer.",
// "clip_h.transformer.", "text_encoder.").
#pragma once
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "models/clip_model.h"
#include "models/weights.h"

namespace comfy {

// comfy/sd.py TEModel, for the encoders we can tell apart from their keys.
enum class TextEncoderKind { ClipL, ClipH, ClipG, T5, Other };

struct TextEncoderFile {
  TextEncoderKind kind = TextEncoderKind::Other;
  bool open_clip_layout = false;              // the file was in OpenCLIP layout
  std::string prefix;                         // the prefix the keys were found under ("" mostly)
  std::shared_ptr<const WeightSet> weights;   // transformers layout: "text_model.*", "text_projection.weight"
  std::string what;                           // ClipL..: "CLIP-L"; Other: what the file looks like
};

// Reads the text-encoder keys of `set` (any accepted layout) and tells which encoder they are
// (detect_te_model: 31+ layers CLIP-G, 23+ CLIP-H, else CLIP-L; T5 from its block keys). A set
// without text-encoder keys is kind Other, with `what` naming what it looks like (a VAE, a UNet,
// a LoRA, ...).
TextEncoderFile read_text_encoder(const std::shared_ptr<const WeightSet>& set);

// The SD1 (CLIP-L) or SD2 (OpenCLIP-H) CLIP of a standalone text-encoder file. CLIP-H files (and
// OpenCLIP-layout files, whatever their depth: tiny test models) get SD2's text encoder, CLIP-L
// ones SD1's. ComfyError naming the file when it holds no text encoder or one we cannot build.
std::shared_ptr<const ClipModel> make_clip_from_file(const TextEncoderFile& file, const std::filesystem::path& path,
                                                     const ClipLoadOptions& options);

// CLIP.get_sd(): ComfyUI's in-memory keys ("clip_l.transformer.text_model.*",
// "clip_l.transformer.text_projection.weight", "clip_l.logit_scale"), patched weights baked in, text
// encoder weights in fp16 and logit_scale in f32 as ComfyUI holds them on the CPU. A CLIP-L
// without a projection gets a zero one (ComfyUI's is uninitialised memory); logit_scale is
// ComfyUI's initial 4.6055 unless the weights have one. position_ids are not part of it.
std::vector<std::pair<std::string, at::Tensor>> clip_state_dict(const ClipModel& clip);

// The CLIP part of a checkpoint as CheckpointSave writes it: SD1 "cond_stage_model.transformer.
// text_model.*" (no projection, no logit_scale); SD2 OpenCLIP layout under "cond_stage_model.model."
// (convert_text_enc_state_dict_v20: q/k/v joined into in_proj, the projection transposed).
std::vector<std::pair<std::string, at::Tensor>> clip_state_dict_for_checkpoint(const ClipModel& clip);

}  // namespace comfy
