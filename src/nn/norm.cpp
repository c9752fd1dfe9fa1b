#include "nn/norm.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>

#include "nn/avx2_math.h"

namespace comfy::nn {

#if defined(__x86_64__)
namespace {

using avx2::exp_clamped;

COMFY_AVX2 inline double hsum_pd(__m256d v) {
  __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
  return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

COMFY_AVX2 inline double hsum_ps(__m256 v) {
  __m256d d = _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
  return hsum_pd(d);
}

// Sum of (x - shift) or of (x - shift)^2 over n floats: four f32 vector chains, flushed into a
// double every 1024 elements (short f32 partial sums, no long dependency chain).
template <bool kSquares>
COMFY_AVX2 double chunked_sum(const float* x, int64_t n, float shift) {
  const int64_t n32 = n - n % 32;
  const __m256 vs = _mm256_set1_ps(shift);
  double total = 0;
  for (int64_t c = 0; c < n32; c += 1024) {
    const int64_t end = std::min(n32, c + 1024);
    __m256 a[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t i = c; i < end; i += 32) {
      for (int k = 0; k < 4; ++k) {
        __m256 v = _mm256_sub_ps(_mm256_loadu_ps(x + i + 8 * k), vs);
        a[k] = kSquares ? _mm256_fmadd_ps(v, v, a[k]) : _mm256_add_ps(a[k], v);
      }
    }
    total += hsum_ps(_mm256_add_ps(_mm256_add_ps(a[0], a[1]), _mm256_add_ps(a[2], a[3])));
  }
  for (int64_t i = n32; i < n; ++i) {
    const double v = x[i] - shift;
    total += kSquares ? v * v : v;
  }
  return total;
}

// Mean and (biased) variance of n floats, in two passes.
COMFY_AVX2 void moments(const float* x, int64_t n, double* mean_out, double* var_out) {
  const double mean = chunked_sum<false>(x, n, 0.0f) / static_cast<double>(n);
  *mean_out = mean;
  *var_out = chunked_sum<true>(x, n, static_cast<float>(mean)) / static_cast<double>(n);
}

// y = x * a + b over n floats, then silu when asked.
COMFY_AVX2 void affine(const float* x, float* y, int64_t n, float a, float b, bool silu) {
  const int64_t n8 = n - n % 8;
  const __m256 va = _mm256_set1_ps(a), vb = _mm256_set1_ps(b), one = _mm256_set1_ps(1.0f);
  const __m256 sign = _mm256_set1_ps(-0.0f);
  for (int64_t i = 0; i < n8; i += 8) {
    __m256 v = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), va, vb);
    if (silu) v = _mm256_div_ps(v, _mm256_add_ps(one, exp_clamped(_mm256_xor_ps(v, sign))));
    _mm256_storeu_ps(y + i, v);
  }
  for (int64_t i = n8; i < n; ++i) {
    float v = x[i] * a + b;
    if (silu) v = v / (1.0f + std::exp(-v));
    y[i] = v;
  }
}

}  // namespace

bool fast_group_norm_applies(const at::Tensor& x, int64_t groups) {
  return avx2::cpu_has_avx2_fma() && x.device().is_cpu() && x.scalar_type() == at::kFloat && x.dim() >= 2 &&
         x.is_contiguous() && groups > 0 && x.size(1) % groups == 0 && x.numel() > 0;
}

at::Tensor group_norm_cpu(const at::Tensor& x, int64_t groups, const at::Tensor& weight, const at::Tensor& bias,
                          double eps, bool silu, bool in_place) {
  const int64_t n = x.size(0), c = x.size(1);
  const int64_t spatial = x.numel() / (n * c), cpg = c / groups;
  at::Tensor w = weight.defined() ? weight.to(at::kFloat).contiguous() : at::ones({c}, x.options());
  at::Tensor b = bias.defined() ? bias.to(at::kFloat).contiguous() : at::zeros({c}, x.options());
  at::Tensor y = in_place ? x : at::empty_like(x);
  const float* xp = x.data_ptr<float>();
  const float* wp = w.data_ptr<float>();
  const float* bp = b.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  at::parallel_for(0, n * groups, 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t g = t % groups;
      const float* xg = xp + t * cpg * spatial;
      float* yg = yp + t * cpg * spatial;
      double mean = 0, var = 0;
      moments(xg, cpg * spatial, &mean, &var);
      const double rstd = 1.0 / std::sqrt(var + eps);
      for (int64_t ci = 0; ci < cpg; ++ci) {
        const int64_t ch = g * cpg + ci;
        const double a = rstd * wp[ch];
        affine(xg + ci * spatial, yg + ci * spatial, spatial, static_cast<float>(a),
               static_cast<float>(bp[ch] - mean * a), silu);
      }
    }
  });
  return y;
}

#else
bool fast_group_norm_applies(const at::Tensor&, int64_t) { return false; }
at::Tensor group_norm_cpu(const at::Tensor& x, int64_t, const at::Tensor&, const at::Tensor&, double, bool, bool) {
  TORCH_CHECK(false, "group_norm_cpu needs x86-64");
  return x;
}
#endif

}  // namespace comfy::nn
