// VAE: ComfyUI's VAE object (comfy/sd.py VAE) over the KL autoencoder of SD1.x/SD2.x, TAESD
// (VAELoader's "taesd" & co.) and the "pixel_space" pass-through VAE. Immutable; nodes share it.
//
// IMAGE is [B,H,W,C] in [0,1] (channels last); LATENT samples are [B,C,h,w], unscaled.
#pragma once
#include <ATen/ATen.h>

#include <functional>
#include <memory>
#include <string>

#include "graph/value.h"
#include "models/weights.h"
#include "nn/vae.h"

namespace comfy {

class Vae : public Object {
 public:
  enum class Kind { kl, taesd, pixel_space };

  Vae(Weights w, nn::VaeConfig cfg);
  static std::shared_ptr<const Vae> pixel_space();
  // TAESD over weights with "taesd_encoder.*", "taesd_decoder.*" and optional 0-dim
  // "vae_scale"/"vae_shift" (VAELoader.load_taesd sets them per family; 1 and 0 otherwise).
  static std::shared_ptr<const Vae> taesd(const Weights& w);

  Kind kind() const { return kind_; }
  const nn::VaeConfig& config() const { return cfg_; }
  const Weights& weights() const { return weights_; }
  int64_t downscale_ratio() const {
    return kind_ == Kind::kl ? cfg_.compression() : kind_ == Kind::taesd ? 8 : 1;
  }
  int64_t upscale_ratio() const { return downscale_ratio(); }
  int64_t latent_channels() const { return kind_ == Kind::pixel_space ? 3 : latent_channels_; }
  int64_t output_channels() const { return 3; }

  // VAE.decode: latent [B,C,h,w] (a 5-D [B,C,T,h,w] latent takes frame 0, as ComfyUI does for
  // image VAEs) -> IMAGE [B,h*8,w*8,3], (x+1)/2 clamped to [0,1]. Batches are split to bound
  // memory, as ComfyUI splits them; the result does not depend on the split.
  at::Tensor decode(const at::Tensor& latent) const;
  // VAE.encode: IMAGE [B,H,W,C] -> latent [B,C,H/8,W/8], after vae_encode_crop_pixels.
  at::Tensor encode(const at::Tensor& image) const;
  // VAE.decode_tiled / encode_tiled (2-D): comfy.utils.tiled_scale three times (tiles of
  // (x/2, y*2), (x*2, y/2) and (x, y), feathered over `overlap`) and averaged. Tile sizes and
  // overlap are in latent units for decode and in pixels for encode (ComfyUI's defaults: 64/64/16
  // and 512/512/64).
  at::Tensor decode_tiled(const at::Tensor& latent, int64_t tile_x = 64, int64_t tile_y = 64, int64_t overlap = 16) const;
  at::Tensor encode_tiled(const at::Tensor& image, int64_t tile_x = 512, int64_t tile_y = 512, int64_t overlap = 64) const;

  // vae_encode_crop_pixels: centre-crops H and W down to multiples of the downscale ratio and
  // keeps the first 3 channels.
  at::Tensor crop_pixels(const at::Tensor& image) const;

  // VAE.spacial_compression_decode / temporal_compression_decode (None for image VAEs).
  int64_t spacial_compression_decode() const { return upscale_ratio(); }
  int64_t spacial_compression_encode() const { return downscale_ratio(); }

  std::string repr() const override { return "<comfy.sd.VAE object>"; }

 private:
  Vae() = default;
  // first_stage_model.decode/encode on channels-first tensors, with process_input/output.
  at::Tensor decode_raw(const at::Tensor& z) const;  // -> [B,3,H,W] in [0,1]
  at::Tensor encode_raw(const at::Tensor& pixels_nchw) const;  // [0,1] pixels -> latent
  Kind kind_ = Kind::kl;
  Weights weights_;
  nn::VaeConfig cfg_;
  int64_t latent_channels_ = 4;
  double taesd_scale_ = 1.0, taesd_shift_ = 0.0;
};

// A VAE over weights in the standalone layout ("encoder.*", "decoder.*", "quant_conv.*",
// "post_quant_conv.*"): pass a view at "first_stage_model." for a checkpoint. ComfyError naming
// what is missing when the keys are not a VAE.
std::shared_ptr<const Vae> make_vae(const Weights& w);

inline const Vae& vae_of(const Value& v) { return v.as<Vae>("VAE"); }

// comfy.utils.tiled_scale_multidim for 2-D samples [B,C,H,W]: runs `fn` on overlapping tiles
// (tile_y, tile_x) and blends them with a linear feather over the scaled overlap. `scale` is the
// output/input size ratio (8 for decode, 1/8 for encode).
at::Tensor tiled_scale(const at::Tensor& samples, const std::function<at::Tensor(const at::Tensor&)>& fn,
                       int64_t tile_x, int64_t tile_y, int64_t overlap, double scale, int64_t out_channels);

}  // namespace comfy
