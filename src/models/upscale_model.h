// Upscale models (ComfyUI's UPSCALE_MODEL: a spandrel ImageModelDescriptor) for the
// architectures this build runs: ESRGAN / RRDBNet (nn/rrdbnet.h, every key layout, any scale
// and block count, pixel-unshuffle variants) and RealESRGAN Compact (nn/srvgg_compact.h).
// The architecture comes from the keys alone, as spandrel's ModelLoader decides it.
#pragma once
#include <ATen/ATen.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <variant>

#include "graph/value.h"
#include "models/weights.h"
#include "nn/rrdbnet.h"
#include "nn/srvgg_compact.h"

namespace comfy {

struct UpscaleModel : Object {
  std::string architecture;  // spandrel's id: "ESRGAN" or "Compact"
  std::variant<nn::RRDBNetConfig, nn::SRVGGCompactConfig> config;
  Weights weights;
  int64_t scale = 4;
  int64_t input_channels = 3, output_channels = 3;
  // spandrel's SizeRequirements: the input is padded up to these (reflect, then replicate).
  int64_t size_minimum = 0, size_multiple_of = 1;

  // ImageModelDescriptor.__call__: image [1, C, H, W] f32 in [0,1] -> [1, C, H*scale, W*scale]:
  // padded to the size requirements, the network, clamped to [0,1], the padding cropped.
  at::Tensor operator()(const at::Tensor& image) const;
  std::string describe() const;  // "ESRGAN (Real-ESRGAN keys) 4x, nf 64, ..."
  std::string repr() const override;
};

inline const UpscaleModel& upscale_model_of(const Value& v) { return v.as<UpscaleModel>("UPSCALE_MODEL"); }

// UpscaleModelLoader: the file's weights (safetensors, or a .pth through the restricted unpickler, see
// load_weight_file), a leading "module." stripped as ComfyUI and spandrel do, the architecture
// detected. A layout we do not run is a ComfyError naming the file and what it looks like.
std::shared_ptr<const UpscaleModel> load_upscale_model(const std::filesystem::path& path);
// The same over weights already loaded; `file` names them in errors.
std::shared_ptr<const UpscaleModel> make_upscale_model(std::shared_ptr<const WeightSet> set, const std::string& file);

// ImageUpscaleWithModel: image [B,H,W,C] -> [B,H*s,W*s,C] clamped to [0,1], run on tiles
// (comfy.utils.tiled_scale with `tile` and `overlap`, blended as ComfyUI blends them); a tile that
// runs out of memory is retried with half the tile, down to 128. `progress(done, total)` is called
// after each tile (total = batch x tiles, comfy.utils.get_tiled_scale_steps).
at::Tensor upscale_with_model(const UpscaleModel& model, const at::Tensor& image, int64_t tile = 512, int64_t overlap = 32,
                              const std::function<void(int64_t, int64_t)>& progress = {});

// comfy.utils.get_tiled_scale_steps.
int64_t tiled_scale_steps(int64_t width, int64_t height, int64_t tile_x, int64_t tile_y, int64_t overlap);

}  // namespace comfy
