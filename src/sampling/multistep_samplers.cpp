// Linear multistep samplers from zju-pi's diff-sampler as ComfyUI ships them: ipndm, ipndm_v
// and deis (the DEIS coefficients are in deis.cpp).
#include <vector>

#include "sampling/k_common.h"

namespace comfy::ksampling {

// deis.cpp: get_deis_coeff_list(t_steps, max_order, deis_mode).
std::vector<std::vector<at::Tensor>> get_deis_coeff_list(const at::Tensor& t_steps, int64_t max_order,
                                                         const std::string& deis_mode);

namespace {

// The history of derivatives, oldest first, at most max_order - 1 long.
void push_history(std::vector<at::Tensor>& buffer, int64_t max_order, const at::Tensor& d_cur) {
  if (static_cast<int64_t>(buffer.size()) == max_order - 1) {
    for (int64_t k = 0; k < max_order - 2; ++k) buffer[static_cast<size_t>(k)] = buffer[static_cast<size_t>(k + 1)];
    buffer.back() = d_cur;
  } else {
    buffer.push_back(d_cur);
  }
}

const at::Tensor& back(const std::vector<at::Tensor>& b, size_t k) { return b[b.size() - k]; }

at::Tensor sample_ipndm(Ctx& ctx, at::Tensor x, at::Tensor sigmas) {
  int64_t max_order = static_cast<int64_t>(ctx.opt("max_order", 4));
  at::Tensor x_next = x;
  std::vector<at::Tensor> buffer;
  for (int64_t i = 0; i < sigmas.size(0) - 1; ++i) {
    at::Tensor t_cur = sigmas[i], t_next = sigmas[i + 1];
    at::Tensor x_cur = x_next;
    at::Tensor denoised = ctx.call(x_cur, t_cur);
    ctx.report(i, x, denoised, sigmas[i], sigmas[i]);  // k-diffusion reports the initial x here
    at::Tensor d_cur = (x_cur - denoised) / t_cur;
    int64_t order = std::min(max_order, i + 1);
    if (f(t_next) == 0) {
      x_next = denoised;
    } else if (order == 1) {
      x_next = x_cur + (t_next - t_cur) * d_cur;
    } else if (order == 2) {
      x_next = x_cur + (t_next - t_cur) * (3 * d_cur - back(buffer, 1)) / 2;
    } else if (order == 3) {
      x_next = x_cur + (t_next - t_cur) * (23 * d_cur - 16 * back(buffer, 1) + 5 * back(buffer, 2)) / 12;
    } else if (order == 4) {
      x_next = x_cur + (t_next - t_cur) *
                           (55 * d_cur - 59 * back(buffer, 1) + 37 * back(buffer, 2) - 9 * back(buffer, 3)) / 24;
    }
    push_history(buffer, max_order, d_cur);
  }
  return x_next;
}

at::Tensor sample_ipndm_v(Ctx& ctx, at::Tensor x, at::Tensor sigmas) {
  int64_t max_order = static_cast<int64_t>(ctx.opt("max_order", 4));
  at::Tensor x_next = x;
  const at::Tensor& t_steps = sigmas;
  std::vector<at::Tensor> buffer;
  for (int64_t i = 0; i < sigmas.size(0) - 1; ++i) {
    at::Tensor t_cur = sigmas[i], t_next = sigmas[i + 1];
    at::Tensor x_cur = x_next;
    at::Tensor denoised = ctx.call(x_cur, t_cur);
    ctx.report(i, x, denoised, sigmas[i], sigmas[i]);
    at::Tensor d_cur = (x_cur - denoised) / t_cur;
    int64_t order = std::min(max_order, i + 1);
    if (f(t_next) == 0) {
      x_next = denoised;
    } else if (order == 1) {
      x_next = x_cur + (t_next - t_cur) * d_cur;
    } else if (order == 2) {
      at::Tensor h_n = t_next - t_cur;
      at::Tensor h_n_1 = t_cur - t_steps[i - 1];
      at::Tensor coeff1 = (2 + (h_n / h_n_1)) / 2;
      at::Tensor coeff2 = -(h_n / h_n_1) / 2;
      x_next = x_cur + (t_next - t_cur) * (coeff1 * d_cur + coeff2 * back(buffer, 1));
    } else if (order == 3) {
      at::Tensor h_n = t_next - t_cur;
      at::Tensor h_n_1 = t_cur - t_steps[i - 1];
      at::Tensor h_n_2 = t_steps[i - 1] - t_steps[i - 2];
      at::Tensor temp = (1 - h_n / (3 * (h_n + h_n_1)) * (h_n * (h_n + h_n_1)) / (h_n_1 * (h_n_1 + h_n_2))) / 2;
      at::Tensor coeff1 = (2 + (h_n / h_n_1)) / 2 + temp;
      at::Tensor coeff2 = -(h_n / h_n_1) / 2 - (1 + h_n_1 / h_n_2) * temp;
      at::Tensor coeff3 = temp * h_n_1 / h_n_2;
      x_next = x_cur + (t_next - t_cur) * (coeff1 * d_cur + coeff2 * back(buffer, 1) + coeff3 * back(buffer, 2));
    } else if (order == 4) {
      at::Tensor h_n = t_next - t_cur;
      at::Tensor h_n_1 = t_cur - t_steps[i - 1];
      at::Tensor h_n_2 = t_steps[i - 1] - t_steps[i - 2];
      at::Tensor h_n_3 = t_steps[i - 2] - t_steps[i - 3];
      at::Tensor temp1 = (1 - h_n / (3 * (h_n + h_n_1)) * (h_n * (h_n + h_n_1)) / (h_n_1 * (h_n_1 + h_n_2))) / 2;
      at::Tensor temp2 = ((1 - h_n / (3 * (h_n + h_n_1))) / 2 + (1 - h_n / (2 * (h_n + h_n_1))) * h_n / (6 * (h_n + h_n_1 + h_n_2))) *
                         (h_n * (h_n + h_n_1) * (h_n + h_n_1 + h_n_2)) /
                         (h_n_1 * (h_n_1 + h_n_2) * (h_n_1 + h_n_2 + h_n_3));
      at::Tensor coeff1 = (2 + (h_n / h_n_1)) / 2 + temp1 + temp2;
      at::Tensor coeff2 = -(h_n / h_n_1) / 2 - (1 + h_n_1 / h_n_2) * temp1 -
                          (1 + (h_n_1 / h_n_2) + (h_n_1 * (h_n_1 + h_n_2) / (h_n_2 * (h_n_2 + h_n_3)))) * temp2;
      at::Tensor coeff3 = temp1 * h_n_1 / h_n_2 +
                          ((h_n_1 / h_n_2) + (h_n_1 * (h_n_1 + h_n_2) / (h_n_2 * (h_n_2 + h_n_3))) * (1 + h_n_2 / h_n_3)) * temp2;
      at::Tensor coeff4 = -temp2 * (h_n_1 * (h_n_1 + h_n_2) / (h_n_2 * (h_n_2 + h_n_3))) * h_n_1 / h_n_2;
      x_next = x_cur + (t_next - t_cur) * (coeff1 * d_cur + coeff2 * back(buffer, 1) + coeff3 * back(buffer, 2) +
                                           coeff4 * back(buffer, 3));
    }
    push_history(buffer, max_order, d_cur);
  }
  return x_next;
}

at::Tensor sample_deis(Ctx& ctx, at::Tensor x, at::Tensor sigmas) {
  int64_t max_order = static_cast<int64_t>(ctx.opt("max_order", 3));
  std::string mode = ctx.text("deis_mode", "tab");
  at::Tensor x_next = x;
  auto coeff_list = get_deis_coeff_list(sigmas, max_order, mode);
  std::vector<at::Tensor> buffer;
  for (int64_t i = 0; i < sigmas.size(0) - 1; ++i) {
    at::Tensor t_cur = sigmas[i], t_next = sigmas[i + 1];
    at::Tensor x_cur = x_next;
    at::Tensor denoised = ctx.call(x_cur, t_cur);
    ctx.report(i, x, denoised, sigmas[i], sigmas[i]);
    at::Tensor d_cur = (x_cur - denoised) / t_cur;
    int64_t order = std::min(max_order, i + 1);
    if (f(t_next) <= 0) order = 1;
    const auto& c = coeff_list[static_cast<size_t>(i)];
    if (order == 1) {
      x_next = x_cur + (t_next - t_cur) * d_cur;
    } else if (order == 2) {
      x_next = x_cur + c[0] * d_cur + c[1] * back(buffer, 1);
    } else if (order == 3) {
      x_next = x_cur + c[0] * d_cur + c[1] * back(buffer, 1) + c[2] * back(buffer, 2);
    } else if (order == 4) {
      x_next = x_cur + c[0] * d_cur + c[1] * back(buffer, 1) + c[2] * back(buffer, 2) + c[3] * back(buffer, 3);
    }
    push_history(buffer, max_order, d_cur);
  }
  return x_next;
}

}  // namespace

SampleFn find_multistep(const std::string& name) {
  if (name == "ipndm") return sample_ipndm;
  if (name == "ipndm_v") return sample_ipndm_v;
  if (name == "deis") return sample_deis;
  return nullptr;
}

}  // namespace comfy::ksampling
