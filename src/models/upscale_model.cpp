#include "models/upscale_model.h"

#include <c10/core/InferenceMode.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "core/error.h"
#include "models/checkpoint.h"
#include "models/model_detection.h"
#include "models/vae_model.h"

namespace comfy {

namespace {

bool all_start_with(const std::vector<std::string>& keys, const std::string& prefix) {
  if (keys.empty()) return false;
  for (auto& k : keys)
    if (k.rfind(prefix, 0) != 0) return false;
  return true;
}

// spandrel's canonicalize_state_dict: a prefix every key shares ("module." from DataParallel,
// "netG." from some trainers) is removed. (ComfyUI itself strips "module." from SwinIR files.)
std::shared_ptr<const WeightSet> canonicalize(std::shared_ptr<const WeightSet> set) {
  for (const char* prefix : {"module.", "netG."})
    if (all_start_with(set->keys(), prefix)) set = set->renamed_prefix(prefix, "");
  return set;
}

// What an upscale-model file we cannot run looks like: one of spandrel's other architectures
// (by a key each of them requires), another kind of model, or its first keys.
std::string describe_unknown(const WeightSet& set) {
  struct Arch {
    const char* key;
    const char* name;
  };
  static const Arch others[] = {
      {"relative_position_index_SA", "HAT or ATD"},
      {"layers.0.residual_group.blocks.0.norm1.weight", "SwinIR / Swin2SR"},
      {"layers.0.swin1.norm1.weight", "DRCT"},
      {"before_RG.1.weight", "DAT"},
      {"block_1.c1_r.sk.weight", "SPAN"},
      {"unet1.conv1.conv.0.weight", "RealCUGAN"},
      {"stylegan_decoder.style_mlp.1.weight", "GFPGAN"},
      {"residual_layer.0.residual_layer.0.layer.0.fn.0.weight", "OmniSR"},
      {"feats.0.weight", "PLKSR"},
      {"m_head.0.weight", "SCUNet"},
  };
  for (auto& a : others)
    if (set.has(a.key))
      return std::string("It looks like a ") + a.name +
             " model, an architecture this build does not run yet (it runs ESRGAN/RRDBNet and RealESRGAN Compact).";
  std::string what = describe_state_dict(set);
  if (!what.empty() && what.find("upscale model") == std::string::npos) return what;
  std::vector<std::string> keys = set.keys();
  std::string first;
  for (size_t i = 0; i < keys.size() && i < 4; ++i) first += (i ? ", " : "") + keys[i];
  return "Its keys (" + std::to_string(keys.size()) + ", first: " + (keys.empty() ? "none" : first) +
         ") match no upscale architecture this build runs (ESRGAN/RRDBNet in the original, Real-ESRGAN or BSRGAN "
         "layout, and RealESRGAN Compact).";
}

// spandrel's pad_tensor: right/bottom padding up to the size requirements, reflect as far as
// reflection allows (size - 1), the rest replicated.
at::Tensor pad_to_requirements(const at::Tensor& x, int64_t minimum, int64_t multiple_of) {
  auto target = [&](int64_t v) {
    v = std::max(v, minimum);
    return v % multiple_of == 0 ? v : (v / multiple_of + 1) * multiple_of;
  };
  const int64_t h = x.size(2), w = x.size(3);
  int64_t pad_w = target(w) - w, pad_h = target(h) - h;
  if (!pad_w && !pad_h) return x;
  const int64_t rw = std::min(pad_w, w - 1), rh = std::min(pad_h, h - 1);
  at::Tensor out = x;
  if (rw > 0 || rh > 0) out = at::reflection_pad2d(out, {0, rw, 0, rh});
  pad_w -= rw;
  pad_h -= rh;
  if (pad_w > 0 || pad_h > 0) out = at::replication_pad2d(out, {0, pad_w, 0, pad_h});
  return out;
}

}  // namespace

at::Tensor UpscaleModel::operator()(const at::Tensor& image) const {
  if (image.dim() != 4)
    throw ComfyError("ValueError", "Expected image tensor to have 4 dimensions, but got " + c10::str(image.sizes()));
  if (image.size(1) != input_channels)
    throw ComfyError("RuntimeError", "this " + architecture + " upscale model takes " + std::to_string(input_channels) +
                                         "-channel images, got " + std::to_string(image.size(1)) + " channels");
  const int64_t h = image.size(2), w = image.size(3);
  at::Tensor x = pad_to_requirements(image, size_minimum, size_multiple_of);
  const bool padded = x.size(2) != h || x.size(3) != w;
  at::Tensor out = std::visit(
      [&](const auto& cfg) -> at::Tensor {
        using T = std::decay_t<decltype(cfg)>;
        if constexpr (std::is_same_v<T, nn::RRDBNetConfig>) return nn::rrdbnet_forward(weights, cfg, x);
        else return nn::srvgg_compact_forward(weights, cfg, x);
      },
      config);
  out.clamp_(0, 1);
  if (padded) out = out.narrow(2, 0, std::min(out.size(2), h * scale)).narrow(3, 0, std::min(out.size(3), w * scale));
  return out;
}

std::string UpscaleModel::describe() const {
  return std::visit([](const auto& cfg) { return cfg.describe(); }, config);
}

std::string UpscaleModel::repr() const { return "<spandrel ImageModelDescriptor " + describe() + ">"; }

std::shared_ptr<const UpscaleModel> make_upscale_model(std::shared_ptr<const WeightSet> set, const std::string& file) {
  set = canonicalize(std::move(set));
  auto model = std::make_shared<UpscaleModel>();
  model->weights = Weights(set);
  try {
    if (auto compact = nn::detect_srvgg_compact(model->weights)) {
      model->architecture = "Compact";
      model->scale = compact->scale;
      model->input_channels = compact->in_nc;
      model->output_channels = compact->out_nc;
      model->config = *compact;
      return model;
    }
    if (auto rrdb = nn::detect_rrdbnet(model->weights)) {
      model->architecture = "ESRGAN";
      model->scale = rrdb->scale();
      model->input_channels = rrdb->image_in_channels();
      model->output_channels = rrdb->out_nc;
      model->size_minimum = 2;
      model->size_multiple_of = rrdb->shuffle > 1 ? 4 : 1;
      if (model->size_minimum % model->size_multiple_of) model->size_minimum = model->size_multiple_of;
      model->config = *rrdb;
      return model;
    }
  } catch (const ComfyError& e) {
    throw ComfyError(e.type(), std::string("Error loading upscale model ") + file + ": " + e.what());
  }
  throw ComfyError("UnsupportedModelError", "Unsupported model type: " + file + " is not an upscale model this build can run. " +
                                           describe_unknown(*set));
}

std::shared_ptr<const UpscaleModel> load_upscale_model(const std::filesystem::path& path) {
  return make_upscale_model(load_weight_file(path), path.string());
}

int64_t tiled_scale_steps(int64_t width, int64_t height, int64_t tile_x, int64_t tile_y, int64_t overlap) {
  auto count = [&](int64_t size, int64_t tile) -> int64_t {
    if (size <= tile) return 1;
    const int64_t step = tile - overlap;
    return (size - overlap + step - 1) / step;  // ceil((size - overlap) / (tile - overlap))
  };
  return count(height, tile_y) * count(width, tile_x);
}

at::Tensor upscale_with_model(const UpscaleModel& model, const at::Tensor& image, int64_t tile, int64_t overlap,
                              const std::function<void(int64_t, int64_t)>& progress) {
  c10::InferenceMode guard;
  if (image.dim() != 4)
    throw ComfyError("RuntimeError", "ImageUpscaleWithModel expects an IMAGE [B,H,W,C], got " + c10::str(image.sizes()));
  const at::Tensor in_img = image.movedim(-1, -3).to(at::kFloat);
  at::Tensor s;
  for (;;) {
    const int64_t total = in_img.size(0) * tiled_scale_steps(in_img.size(3), in_img.size(2), tile, tile, overlap);
    int64_t done = 0;
    auto fn = [&](const at::Tensor& a) {
      at::Tensor out = model(a);
      if (progress) progress(++done, total);
      return out;
    };
    try {
      s = tiled_scale(in_img, fn, tile, tile, overlap, static_cast<double>(model.scale), model.output_channels);
      break;
    } catch (const c10::OutOfMemoryError&) {
      tile /= 2;
      if (tile < 128) throw;
    }
  }
  return at::clamp(s.movedim(-3, -1), 0, 1);
}

}  // namespace comfy
