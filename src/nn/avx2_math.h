// AVX2 helpers shared by the hand-written CPU kernels (nn/attention.cpp, nn/norm.cpp): the
// target attribute, the CPUID check that guards every use, and expf's polynomial on 8 lanes.
// x86-64 only; callers compile these under `#if defined(__x86_64__)`.
#pragma once
#if defined(__x86_64__)
#include <immintrin.h>

#define COMFY_AVX2 __attribute__((target("avx2,fma")))

namespace comfy::nn::avx2 {

inline bool cpu_has_avx2_fma() {
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return ok;
}

// exp(x) = y * 2^n: Cody-Waite reduction and expf's degree-6 polynomial (relative error about
// 1e-7). Returns y; n (rounded x / ln 2) goes to `n_out`.
COMFY_AVX2 inline __m256 exp_mantissa(__m256 x, __m256& n_out) {
  __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                             _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  n_out = n;
  return _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
}

// exp for x <= 0 (softmax after the max is subtracted); below -87.3 it returns ~1e-38 or 0.
COMFY_AVX2 inline __m256 exp_neg(__m256 x) {
  __m256 n;
  __m256 y = exp_mantissa(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), n);
  __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

// exp on [-87.3, 88.3] (clamped outside); 2^n as two factors so that n = 128 does not overflow
// the exponent field.
COMFY_AVX2 inline __m256 exp_clamped(__m256 x) {
  __m256 n;
  __m256 y = exp_mantissa(_mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f)), n);
  __m256i ni = _mm256_cvtps_epi32(n);
  __m256i h = _mm256_srai_epi32(ni, 1);
  __m256 f1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(h, _mm256_set1_epi32(127)), 23));
  __m256 f2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_sub_epi32(ni, h), _mm256_set1_epi32(127)), 23));
  return _mm256_mul_ps(_mm256_mul_ps(y, f1), f2);
}

}  // namespace comfy::nn::avx2
#endif
