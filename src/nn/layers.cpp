#include "nn/layers.h"

#include "nn/attention.h"
#include "nn/conv.h"
#include "nn/matmul.h"
#include "nn/norm.h"
#include "nn/profile.h"

#include <cmath>

namespace comfy::nn {

namespace {
using profile::Scope;

at::Tensor weight_of(const Weights& w, const char* key, at::ScalarType dtype) {
  Scope t(profile::kCast);
  return w(key, dtype);
}

c10::optional<at::Tensor> bias_of(const Weights& w, at::ScalarType dtype) {
  if (!w.has("bias")) return c10::nullopt;
  return weight_of(w, "bias", dtype);
}

// The weight in the dtype it is kept in (f16 stays f16, with its patches applied), for kernels that
// convert it themselves; f32 when it is kept in any other dtype or patched in f32.
at::Tensor weight_as_kept(const Weights& w, const char* key) {
  Scope t(profile::kCast);
  const std::string full = w.prefix + key;
  const at::ScalarType stored = w.set->raw(full).scalar_type();
  const auto patch = w.set->patch_dtype();
  const bool half = stored == at::kHalf && (!patch || *patch == at::kHalf);
  // (For an fp8 tensor raw() decodes it, so that one is decoded twice here.)
  return w.set->get(full, half ? at::kHalf : at::kFloat);
}
}  // namespace

at::Tensor linear(const Weights& w, const at::Tensor& x) {
  Scope t(profile::kLinear);
  auto dtype = x.scalar_type();
  at::Tensor weight;  // [N, K]
  if (paths().conv && dtype == at::kFloat && x.device().is_cpu()) {
    at::Tensor kept = weight_as_kept(w, "weight");
    Scope c(profile::kCast);
    weight = to_float_scratch(kept, 1);  // used once, below
  } else {
    weight = weight_of(w, "weight", dtype);
  }
  at::Tensor bias = w.has("bias") ? weight_of(w, "bias", dtype) : at::Tensor();
  std::vector<int64_t> out_sizes(x.sizes().begin(), x.sizes().end());
  out_sizes.back() = weight.size(0);
  return nn::matmul(x.reshape({-1, x.size(-1)}), weight.t(), bias).view(out_sizes);
}

at::Tensor conv2d(const Weights& w, const at::Tensor& x, int64_t stride, int64_t padding) {
  Scope t(profile::kConv);
  if (paths().conv && onednn_conv_applies(x)) {
    at::Tensor weight = weight_as_kept(w, "weight");
    at::Tensor bias = w.has("bias") ? weight_as_kept(w, "bias") : at::Tensor();
    return conv2d_onednn(x, weight, bias, stride, padding);
  }
  auto dtype = x.scalar_type();
  return at::conv2d(x, weight_of(w, "weight", dtype), bias_of(w, dtype), {stride, stride}, {padding, padding});
}

at::Tensor conv2d_consume(const Weights& w, at::Tensor x, int64_t stride, int64_t padding) {
  Scope t(profile::kConv);
  if (paths().conv && onednn_conv_applies(x)) {
    at::Tensor weight = weight_as_kept(w, "weight");
    at::Tensor bias = w.has("bias") ? weight_as_kept(w, "bias") : at::Tensor();
    return conv2d_onednn(std::move(x), weight, bias, stride, padding);
  }
  auto dtype = x.scalar_type();
  return at::conv2d(x, weight_of(w, "weight", dtype), bias_of(w, dtype), {stride, stride}, {padding, padding});
}

at::Tensor group_norm_silu_consume(const Weights& w, at::Tensor x, int64_t groups, double eps) {
  if (paths().gn_silu && fast_group_norm_applies(x, groups) && x.use_count() == 1 &&
      x.storage().use_count() == 1) {
    Scope t(profile::kNorm);
    auto dtype = x.scalar_type();
    return group_norm_cpu(x, groups, weight_of(w, "weight", dtype), bias_of(w, dtype).value_or(at::Tensor()), eps, true,
                          /*in_place=*/true);
  }
  return group_norm_silu(w, x, groups, eps);
}

at::Tensor group_norm(const Weights& w, const at::Tensor& x, int64_t groups, double eps) {
  Scope t(profile::kNorm);
  auto dtype = x.scalar_type();
  if (paths().gn_silu && fast_group_norm_applies(x, groups)) {
    return group_norm_cpu(x, groups, weight_of(w, "weight", dtype), bias_of(w, dtype).value_or(at::Tensor()), eps, false);
  }
  return at::group_norm(x, groups, weight_of(w, "weight", dtype), bias_of(w, dtype), eps);
}

at::Tensor group_norm_silu(const Weights& w, const at::Tensor& x, int64_t groups, double eps) {
  if (paths().gn_silu && fast_group_norm_applies(x, groups)) {
    Scope t(profile::kNorm);
    auto dtype = x.scalar_type();
    return group_norm_cpu(x, groups, weight_of(w, "weight", dtype), bias_of(w, dtype).value_or(at::Tensor()), eps, true);
  }
  at::Tensor y = group_norm(w, x, groups, eps);
  Scope t(profile::kNorm);
  return at::silu_(y);
}

at::Tensor layer_norm(const Weights& w, const at::Tensor& x, double eps) {
  Scope t(profile::kNorm);
  auto dtype = x.scalar_type();
  return at::layer_norm(x, {x.size(-1)}, weight_of(w, "weight", dtype), bias_of(w, dtype), eps);
}

at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t heads,
                     const std::optional<at::Tensor>& mask) {
  Scope t(profile::kAttention);
  if (!mask && paths().attention && (q.size(2) / heads) % 8 == 0 &&
      q.size(1) * k.size(1) >= 64 * 64 && blocked_attention_applies(q, k, v)) {
    return blocked_attention(q, k, v, heads);
  }
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
