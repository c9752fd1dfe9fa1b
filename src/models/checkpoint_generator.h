// Deterministic random-weight checkpoints in the real SD1.5 / SD2.x file layouts, for tests and
// benchmarks (`comfycpp dev make-checkpoint`). The key names and shapes follow the public
// layouts (LDM UNet and VAE, CLIP-L in transformers layout for SD1.5, OpenCLIP in
// `cond_stage_model.model.*` layout for SD2); the values are seeded normal noise (std 0.02),
// norms at weight 1 / bias 0. "full" has the real sizes; "tiny" the same structure with small
// widths, so that tests load and run it in well under a second.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/json.h"

namespace comfy {

struct GenUNetSpec {
  int64_t in_channels = 4;
  int64_t model_channels = 320;
  std::vector<int64_t> channel_mult{1, 2, 4, 4};
  int64_t num_res_blocks = 2;
  std::vector<bool> attention{true, true, true, false};  // a SpatialTransformer per level
  // Per output block (in block order); empty: each output block mirrors its level's `attention`.
  std::vector<bool> output_attention;
  int64_t context_dim = 768;
  bool use_linear = false;  // SD2: proj_in/proj_out are Linear
};

struct GenVaeSpec {
  int64_t ch = 128;
  std::vector<int64_t> ch_mult{1, 2, 4, 4};
  int64_t num_res_blocks = 2;
  int64_t z_channels = 4;
  int64_t embed_dim = 4;
};

struct GenClipSpec {
  bool open_clip = false;  // false: CLIP-L transformers layout; true: OpenCLIP layout
  int64_t hidden = 768;
  int64_t layers = 12;
  int64_t mlp = 3072;
  int64_t vocab = 49408;
  int64_t positions = 77;
};

struct CheckpointSpec {
  std::string arch;        // "sd15", "sd2", "sd2-v"
  std::string size;        // "tiny", "full"
  GenUNetSpec unet;
  GenVaeSpec vae;
  GenClipSpec clip;
  bool v_prediction = false;  // sd2-v: ComfyUI's SD20.model_type heuristic answers V
};

// The spec of an arch ("sd15", "sd2", "sd2-v") at a size ("tiny", "full"). ComfyError
// (ValueError) for anything else.
CheckpointSpec checkpoint_spec(const std::string& arch, const std::string& size);

// How a tensor's values are made.
enum class GenInit { Normal, Ones, Zeros, PositionIds, LogitScale, VBias };

struct GenTensor {
  std::string name;
  std::vector<int64_t> shape;
  GenInit init = GenInit::Normal;
};

// Every tensor of the checkpoint, in generation order (full names with their prefixes).
std::vector<GenTensor> checkpoint_layout(const CheckpointSpec& spec);
// The UNet part alone, with `prefix` (e.g. "" for a diffusion-model-only file).
std::vector<GenTensor> unet_layout(const GenUNetSpec& spec, const std::string& prefix, bool v_prediction = false);

// The tensors with seeded values (at::Generator on the CPU, seeded with `seed`), in `dtype`
// (position_ids stay int64). Deterministic: the same arguments give the same values.
std::vector<std::pair<std::string, at::Tensor>> generate_tensors(const std::vector<GenTensor>& layout,
                                                                 at::ScalarType dtype, uint64_t seed);

// Writes the checkpoint to `path` (save_safetensors), with __metadata__ "comfycpp.arch",
// "comfycpp.prediction" ("eps"/"v"), "comfycpp.size", "comfycpp.seed".
void make_checkpoint(const std::string& arch, const std::string& size, at::ScalarType dtype, uint64_t seed,
                     const std::filesystem::path& path);

}  // namespace comfy
