// Attention on the CPU without the full [Lq, Lk] score matrix: for each (batch, head) and block
// of query rows, S = Q_blk Kᵀ · scale and O_blk = softmax(S) V run on oneDNN matmuls (primitives
// created once per shape) straight over the strided [B, L, heads*d] tensors, so nothing is
// permuted or copied, and each thread's scores fit its cache.
#pragma once
#include <ATen/ATen.h>

namespace comfy::nn {

// Whether blocked_attention takes these inputs (CPU, f32, last dimension dense).
bool blocked_attention_applies(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v);
// softmax(q kᵀ / sqrt(d)) v for q [B, Lq, heads*d], k/v [B, Lk, heads*d] -> [B, Lq, heads*d].
at::Tensor blocked_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t heads);

}  // namespace comfy::nn
