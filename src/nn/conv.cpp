#include "nn/conv.h"

#include "nn/matmul.h"

#include <ATen/Parallel.h>
#include <dnnl.hpp>

#include <cstdlib>
#include <map>
#include <unordered_map>
#include <mutex>
#include <tuple>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace comfy::nn {

namespace {

using dims = dnnl::memory::dims;
using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

const int64_t kGemmMaxSpatial = std::getenv("COMFY_CONV_GEMM_HW") ? std::atoll(std::getenv("COMFY_CONV_GEMM_HW")) : 256;

struct ConvPlan {
  dnnl::convolution_forward::primitive_desc pd;
  dnnl::convolution_forward conv;
  dnnl::memory::desc src_plain, dst_plain, weights_plain;
  bool src_reorder = false, dst_reorder = false;
  dnnl::reorder to_src, from_dst;
  int weights_block = 0;  // 8: weights are OIhw8i8o (converted by our own pass); 0: oneDNN reorder
  dnnl::reorder weights_reorder;
};

// n, c, h, w, o, kh, kw, stride, pad
using ConvKey = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t>;

const ConvPlan& plan_for(const ConvKey& key) {
  static std::mutex mutex;
  static std::map<ConvKey, ConvPlan> cache;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  auto [n, c, h, w, o, kh, kw, stride, pad] = key;
  const int64_t oh = (h + 2 * pad - kh) / stride + 1, ow = (w + 2 * pad - kw) / stride + 1;
  dnnl::engine& engine = cpu_engine();
  ConvPlan p;
  p.src_plain = dnnl::memory::desc(dims{n, c, h, w}, dt::f32, tag::nchw);
  p.dst_plain = dnnl::memory::desc(dims{n, o, oh, ow}, dt::f32, tag::nchw);
  p.weights_plain = dnnl::memory::desc(dims{o, c, kh, kw}, dt::f32, tag::oihw);
  // Small feature maps: plain NCHW in and out lets oneDNN pick its im2col + gemm kernel, which
  // reads the weights once; the direct kernels stream all weights per output row. A 1x1 stride-1
  // convolution in NCHW is a plain matrix product: no im2col, and no reorders of x and y.
  const bool gemm = h * w <= kGemmMaxSpatial || (kh == 1 && kw == 1 && stride == 1 && pad == 0);
  dnnl::memory::desc src_any(dims{n, c, h, w}, dt::f32, gemm ? tag::nchw : tag::any);
  dnnl::memory::desc dst_any(dims{n, o, oh, ow}, dt::f32, gemm ? tag::nchw : tag::any);
  dnnl::memory::desc wei_any(dims{o, c, kh, kw}, dt::f32, tag::any);
  dnnl::memory::desc bias_md(dims{o}, dt::f32, tag::x);
  dnnl::convolution_forward::desc desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src_any,
                                       wei_any, bias_md, dst_any, dims{stride, stride}, dims{pad, pad}, dims{pad, pad});
  // A user-managed scratchpad: with oneDNN's default (library) mode the scratchpad is a buffer
  // of the thread that created the primitive, and a cached primitive run from another thread
  // (a second server's executor, a test) writes past the end of that thread's buffer.
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  p.pd = dnnl::convolution_forward::primitive_desc(desc, attr, engine);
  p.conv = dnnl::convolution_forward(p.pd);
  if (p.pd.src_desc() != p.src_plain) {
    p.src_reorder = true;
    p.to_src = dnnl::reorder(dnnl::reorder::primitive_desc(engine, p.src_plain, engine, p.pd.src_desc()));
  }
  if (p.pd.dst_desc() != p.dst_plain) {
    p.dst_reorder = true;
    p.from_dst = dnnl::reorder(dnnl::reorder::primitive_desc(engine, p.pd.dst_desc(), engine, p.dst_plain));
  }
  if (o % 8 == 0 && c % 8 == 0 && p.pd.weights_desc() == dnnl::memory::desc(dims{o, c, kh, kw}, dt::f32, tag::OIhw8i8o)) {
    p.weights_block = 8;
  } else if (p.pd.weights_desc() != p.weights_plain) {
    p.weights_reorder = dnnl::reorder(dnnl::reorder::primitive_desc(engine, p.weights_plain, engine, p.pd.weights_desc()));
  }
  return cache.emplace(key, std::move(p)).first->second;
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma,f16c"))) inline void load8(const at::Half* src, float* dst) {
  _mm256_storeu_ps(dst, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src))));
}
__attribute__((target("avx2,fma,f16c"))) inline void load8(const float* src, float* dst) {
  _mm256_storeu_ps(dst, _mm256_loadu_ps(src));
}
bool cpu_has_f16c() {
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c");
  return ok;
}
#else
inline void load8(const at::Half* src, float* dst) { for (int i = 0; i < 8; ++i) dst[i] = static_cast<float>(src[i]); }
inline void load8(const float* src, float* dst) { for (int i = 0; i < 8; ++i) dst[i] = src[i]; }
bool cpu_has_f16c() { return false; }
#endif

// weight [O, I, kh, kw] (dense, f16 or f32) -> OIhw8i8o f32: element (o, i, y, x) goes to
// ((((o/8) * (I/8) + i/8) * kh + y) * kw + x) * 64 + (i%8) * 8 + o%8. One pass, per 8x8 block of
// (o, i): the block's 8 source rows are contiguous runs of 8*kh*kw values.
template <typename T>
void to_oihw8i8o(const T* src, float* dst, int64_t o, int64_t i, int64_t khw) {
  const int64_t ob_n = o / 8, ib_n = i / 8, run = 8 * khw;
  at::parallel_for(0, ob_n * ib_n, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> tmp(static_cast<size_t>(8 * run));  // [8 o][8 i][khw]
    for (int64_t blk = begin; blk < end; ++blk) {
      const int64_t ob = blk / ib_n, ib = blk % ib_n;
      for (int64_t oo = 0; oo < 8; ++oo) {
        const T* row = src + ((ob * 8 + oo) * i + ib * 8) * khw;
        float* t = tmp.data() + oo * run;
        for (int64_t e = 0; e < run; e += 8) load8(row + e, t + e);
      }
      float* out = dst + blk * khw * 64;
      for (int64_t s = 0; s < khw; ++s)
        for (int64_t ii = 0; ii < 8; ++ii)
          for (int64_t oo = 0; oo < 8; ++oo) out[s * 64 + ii * 8 + oo] = tmp[(oo * 8 + ii) * khw + s];
    }
  });
}

}  // namespace

bool onednn_conv_applies(const at::Tensor& x) {
  return x.device().is_cpu() && x.scalar_type() == at::kFloat && x.dim() == 4;
}

at::Tensor conv2d_onednn(at::Tensor x, const at::Tensor& weight, const at::Tensor& bias, int64_t stride,
                         int64_t padding) {
  if (!x.is_contiguous()) x = x.contiguous();
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  const int64_t o = weight.size(0), kh = weight.size(2), kw = weight.size(3);
  TORCH_CHECK(weight.size(1) == c, "conv2d: weight ", weight.sizes(), " does not fit input ", x.sizes());
  const ConvPlan& p = plan_for(ConvKey{n, c, h, w, o, kh, kw, stride, padding});
  dnnl::engine& engine = cpu_engine();
  dnnl::stream stream(engine);

  // Weights: our one-pass conversion into the blocked layout, else f32 + oneDNN's reorder.
  at::Tensor wk;
  const bool fast_weights = p.weights_block == 8 && cpu_has_f16c() &&
                            (weight.scalar_type() == at::kHalf || weight.scalar_type() == at::kFloat);
  if (fast_weights) {
    at::Tensor wc = weight.contiguous();
    wk = scratch_floats(static_cast<int64_t>(p.pd.weights_desc().get_size() / sizeof(float)), 2);
    if (wc.scalar_type() == at::kHalf) to_oihw8i8o(wc.data_ptr<at::Half>(), wk.data_ptr<float>(), o, c, kh * kw);
    else to_oihw8i8o(wc.data_ptr<float>(), wk.data_ptr<float>(), o, c, kh * kw);
  } else {
    at::Tensor wf = to_float_scratch(weight, 0).contiguous();
    if (p.weights_reorder) {
      wk = scratch_floats(static_cast<int64_t>(p.pd.weights_desc().get_size() / sizeof(float)), 2);
      dnnl::memory from(p.weights_plain, engine, wf.data_ptr()), to(p.pd.weights_desc(), engine, wk.data_ptr());
      p.weights_reorder.execute(stream, from, to);
    } else {
      wk = wf;
    }
  }
  at::Tensor b = bias.defined() ? bias.to(at::kFloat).contiguous() : at::zeros({o}, x.options());

  // Buffers are allocated as late and dropped as early as the order of the steps allows: x goes
  // once its blocked copy is made, that copy once the kernel has run (at the 512x512 level of the
  // VAE each of these is 128-256 MB).
  const at::TensorOptions options = x.options();
  const std::vector<int64_t> out_sizes{n, o, p.dst_plain.dims()[2], p.dst_plain.dims()[3]};
  at::Tensor src_buf, dst_buf, out;
  dnnl::memory src_mem(p.src_plain, engine, x.data_ptr());
  if (p.src_reorder) {
    src_buf = at::empty({static_cast<int64_t>(p.pd.src_desc().get_size() / sizeof(float))}, options);
    dnnl::memory blocked(p.pd.src_desc(), engine, src_buf.data_ptr());
    p.to_src.execute(stream, src_mem, blocked);
    stream.wait();
    src_mem = blocked;
    x = at::Tensor();
  }
  dnnl::memory conv_dst;
  if (p.dst_reorder) {
    dst_buf = at::empty({static_cast<int64_t>(p.pd.dst_desc().get_size() / sizeof(float))}, options);
    conv_dst = dnnl::memory(p.pd.dst_desc(), engine, dst_buf.data_ptr());
  } else {
    out = at::empty(out_sizes, options);
    conv_dst = dnnl::memory(p.dst_plain, engine, out.data_ptr());
  }
  dnnl::memory wei_mem(p.pd.weights_desc(), engine, wk.data_ptr());
  dnnl::memory bias_mem(p.pd.bias_desc(), engine, b.data_ptr());
  std::unordered_map<int, dnnl::memory> args{
      {DNNL_ARG_SRC, src_mem}, {DNNL_ARG_WEIGHTS, wei_mem}, {DNNL_ARG_BIAS, bias_mem}, {DNNL_ARG_DST, conv_dst}};
  at::Tensor scratchpad;
  if (const size_t bytes = p.pd.scratchpad_desc().get_size()) {
    scratchpad = at::empty({static_cast<int64_t>(bytes)}, options.dtype(at::kByte));
    args.emplace(DNNL_ARG_SCRATCHPAD, dnnl::memory(p.pd.scratchpad_desc(), engine, scratchpad.data_ptr()));
  }
  p.conv.execute(stream, args);
  stream.wait();
  scratchpad = at::Tensor();
  src_buf = at::Tensor();
  x = at::Tensor();
  if (p.dst_reorder) {
    out = at::empty(out_sizes, options);
    dnnl::memory dst_mem(p.dst_plain, engine, out.data_ptr());
    p.from_dst.execute(stream, conv_dst, dst_mem);
    stream.wait();
  }
  return out;
}

}  // namespace comfy::nn
