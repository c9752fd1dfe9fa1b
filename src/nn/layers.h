// The layers every network here is made of, as functions of (weights, input). Each takes the
// Weights view of the module (so `linear(w.sub("to_q."), x)` reads to_q.weight and, when
// present, to_q.bias) and computes in the input's dtype (f32 on CPU, as ComfyUI computes).
// Networks call these, never at::conv2d & co. directly, so that faster kernels (oneDNN on the
// CPU) replace them in one place.
#pragma once
#include <ATen/ATen.h>

#include <optional>

#include "models/weights.h"

namespace comfy::nn {

at::Tensor linear(const Weights& w, const at::Tensor& x);
at::Tensor conv2d(const Weights& w, const at::Tensor& x, int64_t stride = 1, int64_t padding = 0);
at::Tensor group_norm(const Weights& w, const at::Tensor& x, int64_t groups, double eps);
// silu(group_norm(x)): the res blocks' GroupNorm + SiLU, in one pass over x on the CPU.
at::Tensor group_norm_silu(const Weights& w, const at::Tensor& x, int64_t groups, double eps);
at::Tensor layer_norm(const Weights& w, const at::Tensor& x, double eps);
// Variants that take x by value and may drop it (or overwrite it) as soon as it has been read: a
// caller that moves its last reference in frees that memory inside the op (the VAE's 512x512
// activations are 128-256 MB each). Same results as conv2d / group_norm_silu.
at::Tensor conv2d_consume(const Weights& w, at::Tensor x, int64_t stride = 1, int64_t padding = 0);
at::Tensor group_norm_silu_consume(const Weights& w, at::Tensor x, int64_t groups, double eps);

// softmax(q kᵀ / sqrt(d)) v for q [B, Lq, heads*d], k/v [B, Lk, heads*d] -> [B, Lq, heads*d].
// `mask`, when given, is added to the scores (broadcast to [B*heads, Lq, Lk] or [Lq, Lk]).
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t heads,
                     const std::optional<at::Tensor>& mask = std::nullopt);

// x * sigmoid(1.702 x) (CLIP's quick_gelu); gelu is at::gelu (erf), silu is at::silu.
at::Tensor quick_gelu(const at::Tensor& x);

}  // namespace comfy::nn
