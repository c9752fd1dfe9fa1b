#include "nn/matmul.h"

#include <ATen/Parallel.h>
#include <dnnl.hpp>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <vector>

namespace comfy::nn {

namespace {

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

dnnl::memory::desc desc_of(const at::Tensor& t) {
  dnnl::memory::dims dims(t.sizes().begin(), t.sizes().end());
  dnnl::memory::dims strides(t.strides().begin(), t.strides().end());
  return dnnl::memory::desc(dims, dnnl::memory::data_type::f32, strides);
}

bool onednn_applies(const at::Tensor& a, const at::Tensor& b) {
  return a.device().is_cpu() && a.scalar_type() == at::kFloat && b.scalar_type() == at::kFloat &&
         (a.dim() == 2 || a.dim() == 3) && a.dim() == b.dim();
}

#if defined(__x86_64__)
__attribute__((target("avx2,f16c"))) void half_to_float(const at::Half* src, float* dst, int64_t n) {
  const int64_t n8 = n - n % 8;
  for (int64_t i = 0; i < n8; i += 8)
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
  for (int64_t i = n8; i < n; ++i) dst[i] = static_cast<float>(src[i]);
}
bool cpu_has_f16c() {
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c");
  return ok;
}
#endif

}  // namespace

namespace {
thread_local at::Tensor g_scratch[4];
}

void release_scratch() {
  for (at::Tensor& b : g_scratch) b = at::Tensor();
}

at::Tensor scratch_floats(int64_t numel, int slot) {
  at::Tensor& buf = g_scratch[slot];
  if (!buf.defined() || buf.numel() < numel) {
    buf = at::Tensor();  // free the old one first
    buf = at::empty({numel}, at::TensorOptions().dtype(at::kFloat));
  }
  return buf.narrow(0, 0, numel);
}

namespace {

// A CPU f16 tensor converted with F16C into the f32 tensor `alloc(src)` gives; undefined where
// that path does not apply (other dtypes, other devices, no F16C).
template <typename Alloc>
at::Tensor half_to_float_fast(const at::Tensor& t, Alloc alloc) {
#if defined(__x86_64__)
  if (t.scalar_type() == at::kHalf && t.device().is_cpu() && cpu_has_f16c()) {
    at::Tensor src = t.contiguous();
    at::Tensor out = alloc(src);
    const at::Half* sp = src.data_ptr<at::Half>();
    float* dp = out.data_ptr<float>();
    at::parallel_for(0, src.numel(), 1 << 16, [&](int64_t begin, int64_t end) { half_to_float(sp + begin, dp + begin, end - begin); });
    return out;
  }
#endif
  return at::Tensor();
}

}  // namespace

at::Tensor to_float_scratch(const at::Tensor& t, int slot) {
  if (t.scalar_type() == at::kFloat) return t;
  at::Tensor out = half_to_float_fast(t, [slot](const at::Tensor& src) { return scratch_floats(src.numel(), slot).view(src.sizes()); });
  return out.defined() ? out : t.to(at::kFloat);
}

at::Tensor to_float(const at::Tensor& t) {
  if (t.scalar_type() == at::kFloat) return t;
  at::Tensor out = half_to_float_fast(t, [](const at::Tensor& src) { return at::empty(src.sizes(), src.options().dtype(at::kFloat)); });
  return out.defined() ? out : t.to(at::kFloat);
}

at::Tensor matmul(const at::Tensor& a_in, const at::Tensor& b, const at::Tensor& bias) {
  if (!onednn_applies(a_in, b) || (bias.defined() && bias.scalar_type() != at::kFloat)) {
    at::Tensor out = at::matmul(a_in, b);
    return bias.defined() ? out + bias : out;
  }
  // oneDNN wants the innermost dimension of `a` dense; everything else may be strided.
  at::Tensor a = a_in.stride(-1) == 1 ? a_in : a_in.contiguous();
  std::vector<int64_t> out_sizes(a.sizes().begin(), a.sizes().end());
  out_sizes.back() = b.size(-1);
  at::Tensor out = at::empty(out_sizes, a.options());

  dnnl::memory::desc a_md = desc_of(a), b_md = desc_of(b), out_md = desc_of(out);
  dnnl::engine& engine = cpu_engine();
  std::unordered_map<int, dnnl::memory> args = {
      {DNNL_ARG_SRC, dnnl::memory(a_md, engine, a.data_ptr())},
      {DNNL_ARG_WEIGHTS, dnnl::memory(b_md, engine, b.data_ptr())},
      {DNNL_ARG_DST, dnnl::memory(out_md, engine, out.data_ptr())}};
  dnnl::matmul::primitive_desc pd;
  if (bias.defined()) {
    at::Tensor bias_c = bias.contiguous();
    dnnl::memory::dims bias_dims(a.dim(), 1);
    bias_dims.back() = bias_c.numel();
    dnnl::memory::desc bias_md(bias_dims, dnnl::memory::data_type::f32,
                               a.dim() == 2 ? dnnl::memory::format_tag::ab : dnnl::memory::format_tag::abc);
    pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(a_md, b_md, bias_md, out_md), engine);
    args.emplace(DNNL_ARG_BIAS, dnnl::memory(bias_md, engine, bias_c.data_ptr()));
    dnnl::stream stream(engine);
    dnnl::matmul(pd).execute(stream, args);
    stream.wait();
    return out;
  }
  pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(a_md, b_md, out_md), engine);
  dnnl::stream stream(engine);
  dnnl::matmul(pd).execute(stream, args);
  stream.wait();
  return out;
}

}  // namespace comfy::nn
