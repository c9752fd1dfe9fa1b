// CLIP: a text encoder with its tokenizer, as ComfyUI's CLIP object holds them (comfy/sd.py CLIP,
// comfy/sd1_clip.py SDClipModel): SD1.x's CLIP-L and SD2.x's OpenCLIP-H. Immutable: CLIPSetLastLayer
// and LoRA make new objects sharing the weights.
#pragma once
#include <ATen/ATen.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "graph/value.h"
#include "models/weights.h"
#include "text/sd_tokenizer.h"

namespace comfy {

struct ClipLoadOptions {
  std::vector<std::filesystem::path> embedding_directories;  // models/embeddings folders
};

class ClipModel;  // defined by the text-encoder implementation (models/clip_model.cpp)

// Builds the CLIP of a checkpoint whose keys are in `set` with the checkpoint's own prefixes
// (SD1: "cond_stage_model.transformer.text_model.", SD2: "cond_stage_model.model." in OpenCLIP
// layout), for the family the UNet detection named ("SD15", "SD20", ...). ComfyError naming
// what is missing when the keys are not a known text encoder.
std::shared_ptr<const ClipModel> make_clip_from_checkpoint(std::shared_ptr<const WeightSet> set,
                                                           const std::string& family,
                                                           const ClipLoadOptions& options);

}  // namespace comfy
