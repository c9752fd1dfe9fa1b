// The Canny node's edge detector (kornia.filters.canny with ComfyUI's arguments: 5x5 Gaussian of
// sigma 1, hysteresis on), exposed for its test.
#pragma once
#include <ATen/ATen.h>

namespace comfy {

// image [B,C,H,W] in 0..1 (C 3: grayscale by 0.299/0.587/0.114; C 1 as is) -> edges [B,1,H,W] of
// 0 and 1. kornia's steps: reflect-padded Gaussian blur, replicate-padded Sobel gradients,
// magnitude sqrt(gx²+gy²+1e-6), the angle rounded to 45°, non-maximum suppression along it
// (zero outside the image), the two thresholds (strictly greater), then hysteresis: weak pixels
// that touch a strong one become strong until nothing changes; the remaining weak ones drop.
at::Tensor kornia_canny(const at::Tensor& image, double low_threshold, double high_threshold);

}  // namespace comfy
