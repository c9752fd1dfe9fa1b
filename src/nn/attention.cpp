#include "nn/attention.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <vector>

#include "nn/avx2_math.h"

namespace comfy::nn {

#if defined(__x86_64__)
namespace {

using avx2::exp_neg;

// Query rows per task (COMFY_ATTN_ROWS to tune): their scores are kRows x Lk f32, 768 KB at
// Lk = 4096; 48 measured best of 30-64 on a 2-vCPU EPYC.
const int64_t kRows = std::max(1, std::getenv("COMFY_ATTN_ROWS") ? std::atoi(std::getenv("COMFY_ATTN_ROWS")) : 48);

COMFY_AVX2 inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

COMFY_AVX2 inline float hmax(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// S[m, lkp] = scale * Q[m, d] (row stride sq) x Kᵀ, Kᵀ in panels [lkp/16][d][16] (lkp a multiple
// of 16), so one panel is a contiguous 64*d bytes that stays in L1 for all the rows.
// Query rows per register tile of scores(): 6 x 16 accumulators + 2 key vectors + 1 broadcast.
constexpr int kTile = 6;

COMFY_AVX2 void scores(const float* q, int64_t sq, const float* kt, int64_t m, int64_t d, int64_t lkp, float scale,
                       float* s) {
  const __m256 vs = _mm256_set1_ps(scale);
  const int64_t m4 = m - m % kTile;
  for (int64_t j = 0; j < lkp; j += 16) {
    const float* panel = kt + j * d;
    for (int64_t i = 0; i < m4; i += kTile) {
      const float* q0 = q + i * sq;
      __m256 a[kTile][2];
      for (auto& r : a) r[0] = r[1] = _mm256_setzero_ps();
      for (int64_t c = 0; c < d; ++c) {
        const __m256 k0 = _mm256_loadu_ps(panel + c * 16), k1 = _mm256_loadu_ps(panel + c * 16 + 8);
        for (int r = 0; r < kTile; ++r) {
          const __m256 qv = _mm256_broadcast_ss(q0 + r * sq + c);
          a[r][0] = _mm256_fmadd_ps(qv, k0, a[r][0]);
          a[r][1] = _mm256_fmadd_ps(qv, k1, a[r][1]);
        }
      }
      for (int r = 0; r < kTile; ++r) {
        _mm256_storeu_ps(s + (i + r) * lkp + j, _mm256_mul_ps(a[r][0], vs));
        _mm256_storeu_ps(s + (i + r) * lkp + j + 8, _mm256_mul_ps(a[r][1], vs));
      }
    }
    for (int64_t i = m4; i < m; ++i) {
      __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
      for (int64_t c = 0; c < d; ++c) {
        const __m256 qv = _mm256_broadcast_ss(q + i * sq + c);
        a0 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(panel + c * 16), a0);
        a1 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(panel + c * 16 + 8), a1);
      }
      _mm256_storeu_ps(s + i * lkp + j, _mm256_mul_ps(a0, vs));
      _mm256_storeu_ps(s + i * lkp + j + 8, _mm256_mul_ps(a1, vs));
    }
  }
}

// The first lk entries of each row of S (row stride ls) become exp(row - max(row)), in place;
// inv[r] gets 1 / the row's sum, applied to the output rows afterwards (softmax's division moved
// past the product with V, which saves a pass over S).
COMFY_AVX2 void softmax_rows(float* s, int64_t m, int64_t lk, int64_t ls, float* inv) {
  const int64_t lk8 = lk - lk % 8;
  for (int64_t r = 0; r < m; ++r) {
    float* row = s + r * ls;
    __m256 vmax = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
    for (int64_t j = 0; j < lk8; j += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(row + j));
    float mx = hmax(vmax);
    for (int64_t j = lk8; j < lk; ++j) mx = std::max(mx, row[j]);
    const __m256 vm = _mm256_set1_ps(mx);
    __m256 vsum = _mm256_setzero_ps();
    for (int64_t j = 0; j < lk8; j += 8) {
      __m256 e = exp_neg(_mm256_sub_ps(_mm256_loadu_ps(row + j), vm));
      _mm256_storeu_ps(row + j, e);
      vsum = _mm256_add_ps(vsum, e);
    }
    float sum = hsum(vsum);
    for (int64_t j = lk8; j < lk; ++j) {
      row[j] = std::exp(row[j] - mx);
      sum += row[j];
    }
    inv[r] = 1.0f / sum;
  }
}

// O[r, :d] *= inv[r].
COMFY_AVX2 void scale_rows(float* o, int64_t so, int64_t m, int64_t d, const float* inv) {
  for (int64_t r = 0; r < m; ++r) {
    const __m256 f = _mm256_set1_ps(inv[r]);
    for (int64_t c = 0; c < d; c += 8) _mm256_storeu_ps(o + r * so + c, _mm256_mul_ps(_mm256_loadu_ps(o + r * so + c), f));
  }
}

// O[m, c0 : c0 + 8W] (row stride so) = P[m, lk] (row stride ls) x V[lk, d] (dense rows of d),
// 4 rows at a time.
// Keys per pass of values_chunk: a block of V stays in L1/L2 while all the rows use it; the
// outputs accumulate across blocks (`first` stores, later blocks add).
constexpr int64_t kKeyBlock = 128;

template <int W>
COMFY_AVX2 void values_chunk(const float* p, int64_t m, int64_t lk, const float* v, int64_t d, int64_t c0, float* o,
                             int64_t so, int64_t j0, int64_t j1) {
  // here `lk` is P's row stride
  const bool first = j0 == 0;
  int64_t i = 0;
  for (; i + 4 <= m; i += 4) {
    __m256 a[4][W];
    for (int r = 0; r < 4; ++r)
      for (int w = 0; w < W; ++w) a[r][w] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(o + (i + r) * so + c0 + 8 * w);
    for (int64_t j = j0; j < j1; ++j) {
      __m256 vv[W];
      for (int w = 0; w < W; ++w) vv[w] = _mm256_loadu_ps(v + j * d + c0 + 8 * w);
      for (int r = 0; r < 4; ++r) {
        const __m256 pv = _mm256_broadcast_ss(p + (i + r) * lk + j);
        for (int w = 0; w < W; ++w) a[r][w] = _mm256_fmadd_ps(pv, vv[w], a[r][w]);
      }
    }
    for (int r = 0; r < 4; ++r)
      for (int w = 0; w < W; ++w) _mm256_storeu_ps(o + (i + r) * so + c0 + 8 * w, a[r][w]);
  }
  for (; i < m; ++i) {
    __m256 a[W];
    for (int w = 0; w < W; ++w) a[w] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(o + i * so + c0 + 8 * w);
    for (int64_t j = j0; j < j1; ++j) {
      const __m256 pv = _mm256_broadcast_ss(p + i * lk + j);
      for (int w = 0; w < W; ++w) a[w] = _mm256_fmadd_ps(pv, _mm256_loadu_ps(v + j * d + c0 + 8 * w), a[w]);
    }
    for (int w = 0; w < W; ++w) _mm256_storeu_ps(o + i * so + c0 + 8 * w, a[w]);
  }
}

COMFY_AVX2 void values(const float* p, int64_t m, int64_t lk, int64_t ls, const float* v, int64_t d, float* o,
                       int64_t so) {
  for (int64_t j0 = 0; j0 < lk; j0 += kKeyBlock) {
    const int64_t j1 = std::min(lk, j0 + kKeyBlock);
    int64_t c = 0;
    for (; c + 24 <= d; c += 24) values_chunk<3>(p, m, ls, v, d, c, o, so, j0, j1);
    if (d - c == 16) values_chunk<2>(p, m, ls, v, d, c, o, so, j0, j1);
    else if (d - c == 8) values_chunk<1>(p, m, ls, v, d, c, o, so, j0, j1);
  }
}

}  // namespace

bool blocked_attention_applies(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
  if (!avx2::cpu_has_avx2_fma()) return false;
  for (const at::Tensor* t : {&q, &k, &v}) {
    if (!t->device().is_cpu() || t->scalar_type() != at::kFloat || t->dim() != 3 || t->stride(2) != 1) return false;
  }
  return true;
}

at::Tensor blocked_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t heads) {
  const int64_t b = q.size(0), lq = q.size(1), lk = k.size(1), inner = q.size(2);
  const int64_t d = inner / heads;
  TORCH_CHECK(d % 8 == 0, "blocked_attention: head dim must be a multiple of 8");
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(d)));
  // Kᵀ per head in panels of 16 keys [b, heads, lkp/16, d, 16] (keys zero-padded to lkp), and V
  // per head [b, heads, lk, d], dense.
  const int64_t lkp = (lk + 15) / 16 * 16;
  at::Tensor kpad = lkp == lk ? k : at::constant_pad_nd(k, {0, 0, 0, lkp - lk});
  at::Tensor kt = kpad.reshape({b, lkp / 16, 16, heads, d}).permute({0, 3, 1, 4, 2}).contiguous();
  at::Tensor vh = v.view({b, lk, heads, d}).permute({0, 2, 1, 3}).contiguous();
  at::Tensor out = at::empty({b, lq, inner}, q.options());
  const int64_t blocks = (lq + kRows - 1) / kRows;
  const float* qp = q.data_ptr<float>();
  const float* ktp = kt.data_ptr<float>();
  const float* vp = vh.data_ptr<float>();
  float* op = out.data_ptr<float>();
  const int64_t sq = q.stride(1), bq = q.stride(0);
  // Tasks are handed out one at a time from a shared counter (at::parallel_for splits statically,
  // and one thread's stall, e.g. on a shared machine, would leave the other idle).
  const int64_t tasks = b * heads * blocks;
  std::atomic<int64_t> next{0};
  at::parallel_for(0, at::get_num_threads(), 1, [&](int64_t, int64_t) {
    // Denormal probabilities are far below f32 resolution of the sums: flush them, as they
    // would otherwise slow the products down.
    const unsigned csr = _mm_getcsr();
    _mm_setcsr(csr | 0x8040);
    std::vector<float> s(static_cast<size_t>(kRows * lkp)), inv(static_cast<size_t>(kRows));
    for (int64_t t = next++; t < tasks; t = next++) {
      const int64_t blk = t % blocks, bh = t / blocks;
      const int64_t h = bh % heads, bi = bh / heads;
      const int64_t row0 = blk * kRows, m = std::min(kRows, lq - row0);
      scores(qp + bi * bq + row0 * sq + h * d, sq, ktp + bh * d * lkp, m, d, lkp, scale, s.data());
      softmax_rows(s.data(), m, lk, lkp, inv.data());
      float* o = op + (bi * lq + row0) * inner + h * d;
      values(s.data(), m, lk, lkp, vp + bh * lk * d, d, o, inner);
      scale_rows(o, inner, m, d, inv.data());
    }
    _mm_setcsr(csr);
  });
  return out;
}

#else
bool blocked_attention_applies(const at::Tensor&, const at::Tensor&, const at::Tensor&) { return false; }
at::Tensor blocked_attention(const at::Tensor& q, const at::Tensor&, const at::Tensor&, int64_t) {
  TORCH_CHECK(false, "blocked_attention needs x86-64");
  return q;
}
#endif

}  // namespace comfy::nn
