#include "nn/matmul.h"

#include <dnnl.hpp>

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

}  // namespace

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
