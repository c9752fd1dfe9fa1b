// Matrix products for the networks. On the CPU, f32 products run on oneDNN's matmul directly
// over the tensors' memory: libtorch 1.13 sends them to whatever libblas.so.3 the system has,
// which on a stock Debian is the single-threaded reference BLAS (or OpenBLAS, which misdetects
// recent Xeons). Other devices and dtypes use libtorch.
#pragma once
#include <ATen/ATen.h>

namespace comfy::nn {

// a [M,K] or [B,M,K] times b [K,N] or [B,K,N] (any strides), plus bias [N] when defined.
at::Tensor matmul(const at::Tensor& a, const at::Tensor& b, const at::Tensor& bias = at::Tensor());

}  // namespace comfy::nn
