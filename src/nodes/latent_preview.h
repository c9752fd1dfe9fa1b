// ComfyUI's latent_preview.py: what a sampler node shows while it samples. Each step's denoised
// latent (x0) becomes a small JPEG, by the latent2rgb matrix of the model's latent format or by a
// TAESD decoder from models/vae_approx, fitted into preview_size x preview_size as the server's
// send_image does, and goes to the executor with the step's progress.
#pragma once
#include <ATen/ATen.h>

#include <functional>
#include <string>

#include "graph/execution_context.h"
#include "models/latent_format.h"

namespace comfy {

// get_previewer: a function from x0 ([B,C,h,w] in the model's latent space) to JPEG bytes, or an
// empty function when the prompt's preview method is "none" (then nothing is computed at all).
// "auto" is latent2rgb, as in ComfyUI 0.8; "taesd" without its decoder file warns and falls back
// to latent2rgb.
using LatentPreviewer = std::function<std::string(const at::Tensor& x0)>;
LatentPreviewer get_previewer(const ExecutionContext& ctx, const LatentFormat& format);

// The picture itself (tests look at it): [H,W,3] uint8, before the fit into preview_size.
at::Tensor latent2rgb_preview(const LatentFormat& format, const at::Tensor& x0);

// prepare_callback's per-step work: progress (value, total) and, when previewing, the picture.
void report_step(const ExecutionContext& ctx, const LatentPreviewer& previewer, int64_t value, int64_t total,
                 const at::Tensor& x0);

}  // namespace comfy
