// GroupNorm on the CPU in two passes over each group (moments, then normalise + affine), with
// SiLU fused into the second pass when asked: the res blocks' GroupNorm -> SiLU reads and writes
// the activation once instead of three times.
#pragma once
#include <ATen/ATen.h>

namespace comfy::nn {

// Whether group_norm_cpu takes x (CPU, f32, contiguous NCHW-like, channels divisible by groups).
bool fast_group_norm_applies(const at::Tensor& x, int64_t groups);
// (x - mean) / sqrt(var + eps) * weight + bias per group of channels, then silu when `silu`.
// weight/bias: [C] (any float dtype) or undefined.
// in_place: the result overwrites x (each element is read before it is written) and x is returned.
at::Tensor group_norm_cpu(const at::Tensor& x, int64_t groups, const at::Tensor& weight, const at::Tensor& bias,
                          double eps, bool silu, bool in_place = false);

}  // namespace comfy::nn
