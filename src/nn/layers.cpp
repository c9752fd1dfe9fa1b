#include "nn/layers.h"

#include "nn/matmul.h"

#include <cmath>

namespace comfy::nn {

namespace {
c10::optional<at::Tensor> bias_of(const Weights& w, at::ScalarType dtype) {
  if (!w.has("bias")) return c10::nullopt;
  return w("bias", dtype);
}
}  // namespace

at::Tensor linear(const Weights& w, const at::Tensor& x) {
  auto dtype = x.scalar_type();
  at::Tensor weight = w("weight", dtype);  // [N, K]
  at::Tensor bias = w.has("bias") ? w("bias", dtype) : at::Tensor();
  std::vector<int64_t> out_sizes(x.sizes().begin(), x.sizes().end());
  out_sizes.back() = weight.size(0);
  return nn::matmul(x.reshape({-1, x.size(-1)}), weight.t(), bias).view(out_sizes);
}

at::Tensor conv2d(const Weights& w, const at::Tensor& x, int64_t stride, int64_t padding) {
  auto dtype = x.scalar_type();
  return at::conv2d(x, w("weight", dtype), bias_of(w, dtype), {stride, stride}, {padding, padding});
}

at::Tensor group_norm(const Weights& w, const at::Tensor& x, int64_t groups, double eps) {
  auto dtype = x.scalar_type();
  return at::group_norm(x, groups, w("weight", dtype), bias_of(w, dtype), eps);
}

at::Tensor layer_norm(const Weights& w, const at::Tensor& x, double eps) {
  auto dtype = x.scalar_type();
  return at::layer_norm(x, {x.size(-1)}, w("weight", dtype), bias_of(w, dtype), eps);
}

at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t heads,
                     const std::optional<at::Tensor>& mask) {
  const int64_t b = q.size(0), lq = q.size(1), lk = k.size(1), inner = q.size(2);
  const int64_t d = inner / heads;
  auto split = [&](const at::Tensor& t, int64_t l) {
    return t.reshape({b, l, heads, d}).permute({0, 2, 1, 3}).reshape({b * heads, l, d});
  };
  at::Tensor qh = split(q, lq), kh = split(k, lk), vh = split(v, lk);
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  at::Tensor scores = nn::matmul(qh, kh.transpose(1, 2)).mul_(scale);
  if (mask) scores = scores + *mask;
  at::Tensor probs = at::softmax(scores, -1);
  at::Tensor out = nn::matmul(probs, vh);
  return out.reshape({b, heads, lq, d}).permute({0, 2, 1, 3}).reshape({b, lq, inner});
}

at::Tensor quick_gelu(const at::Tensor& x) { return x * at::sigmoid(x * 1.702); }

}  // namespace comfy::nn
