// Matrix products for the networks. On the CPU, f32 products run on oneDNN's matmul directly
// over the tensors' memory: libtorch 1.13 sends them to whatever libblas.so.3 the system has,
// which on a stock Debian is the single-threaded reference BLAS (or OpenBLAS, which misdetects
// recent Xeons). Other devices and dtypes use libtorch.
#pragma once
#include <ATen/ATen.h>

namespace comfy::nn {

// a [M,K] or [B,M,K] times b [K,N] or [B,K,N] (any strides), plus bias [N] when defined.
at::Tensor matmul(const at::Tensor& a, const at::Tensor& b, const at::Tensor& bias = at::Tensor());

// t as f32: f16 through a parallel F16C pass on x86 (libtorch's cast is several times slower),
// anything else through Tensor::to. Returns t itself when it already is f32.
at::Tensor to_float(const at::Tensor& t);
// The same into a buffer this thread keeps for `slot` (0 or 1) and reuses: no fresh pages per
// call. The result is valid until this thread's next call with the same slot.
at::Tensor to_float_scratch(const at::Tensor& t, int slot);
// A float tensor of `numel` elements from this thread's reused buffer `slot` (2 or 3), valid until
// the next call with that slot on this thread.
at::Tensor scratch_floats(int64_t numel, int slot);
// Frees this thread's scratch buffers (the largest weight of the last network: up to ~120 MB per
// slot for SD1.5's UNet); the next use allocates again. For the end of a stage.
void release_scratch();

}  // namespace comfy::nn
