// 2-D convolutions on oneDNN directly (CPU, f32 compute). Primitives are created once per shape
// and reused. Weights stay in their file dtype (f16 or f32) and are converted per call, in one
// parallel pass, straight into the blocked layout oneDNN's kernel reads (no f32 copy of the
// model, no separate cast and reorder); activations are reordered to and from NCHW around the
// kernel. Same oneDNN kernels as libtorch's own CPU convolution, so results match it.
#pragma once
#include <ATen/ATen.h>

namespace comfy::nn {

// Whether conv2d_onednn takes this input (CPU, f32, 4-D).
bool onednn_conv_applies(const at::Tensor& x);
// x [N, C, H, W] f32 (any strides), weight [O, C, kh, kw] f16 or f32, bias [O] (any float dtype,
// may be undefined) -> [N, O, H', W'] f32 contiguous.
// x is taken by value: when the kernel reads a reordered copy of it, x is dropped right after
// the copy (its memory is freed there if the caller moved its last reference in).
at::Tensor conv2d_onednn(at::Tensor x, const at::Tensor& weight, const at::Tensor& bias, int64_t stride,
                         int64_t padding);

}  // namespace comfy::nn
