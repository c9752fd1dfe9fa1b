// comfy.utils.common_upscale: resizes [B,C,H,W] (or [B,C,T,H,W]) samples to width x height with
// ComfyUI's methods ("nearest-exact", "bilinear", "area", "bicubic", "bislerp", "lanczos"),
// after an optional "center" crop to the target aspect ratio. IMAGE nodes move channels first
// before calling it, as ComfyUI does.
#pragma once
#include <ATen/ATen.h>

#include <string>

namespace comfy {

at::Tensor common_upscale(const at::Tensor& samples, int64_t width, int64_t height, const std::string& upscale_method,
                          const std::string& crop);

// The same for an IMAGE ([B,H,W,C], channels last), as ImageScale and friends call it.
at::Tensor upscale_image(const at::Tensor& image, int64_t width, int64_t height, const std::string& upscale_method,
                         const std::string& crop);

}  // namespace comfy
