// DEIS coefficients (comfy/k_diffusion/deis.py, from zju-pi's diff-sampler). "tab" integrates
// the Lagrange polynomials against the VP integrand on 10000 points, with d log(alpha)/dtau
// taken by torch autograd as ComfyUI does (so the float32 rounding is the same); "rhoab" uses
// the closed forms.
#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <c10/core/InferenceMode.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/error.h"

namespace comfy::ksampling {
namespace {

struct VpTimes {
  at::Tensor t_steps;  // f32
  at::Tensor beta_0, beta_1;  // 0-dim f64
};

// edm2t(edm_steps) with epsilon_s=1e-3, sigma_min=0.002, sigma_max=80. ComfyUI mixes numpy and
// torch here: log(0.002² + 1) is a float32 log (torch.tensor(0.002) is f32), log(80² + 1) a
// float64 one (torch.tensor(80) is an integer tensor), and the 0-dim results promote to f64.
VpTimes edm2t(const at::Tensor& edm_steps) {
  const double epsilon_s = 1e-3;
  // np.log(torch.tensor(0.002) ** 2 + 1): numpy's float32 log of 1.000004f is 0x1.0fffdap-18,
  // one ulp below the correctly rounded logf; ComfyUI's coefficients carry numpy's value.
  at::Tensor log_small = at::scalar_tensor(0x1.0fffdap-18f, at::kFloat);
  at::Tensor log_big = at::scalar_tensor(std::log(6401.0), at::kDouble);
  at::Tensor beta_d = (log_small / epsilon_s - log_big) * 2 / (epsilon_s - 1);
  at::Tensor beta_min = log_big - beta_d * 0.5;
  at::Tensor sigma = edm_steps;
  at::Tensor t = ((beta_min.pow(2) + beta_d * 2 * (sigma.pow(2) + 1).log()).sqrt() - beta_min) / beta_d;
  return {t, beta_min, beta_d + beta_min};
}

at::Tensor cal_integrand(const at::Tensor& beta_0, const at::Tensor& beta_1, const at::Tensor& taus_in) {
  at::Tensor grad, alpha;
  {
    c10::InferenceMode no_inference(false);
    at::AutoGradMode enable_grad(true);
    at::Tensor taus = taus_in.clone();
    at::Tensor b0 = beta_0.clone(), b1 = beta_1.clone();
    taus.requires_grad_(true);
    alpha = at::exp(taus.pow(2) * -0.5 * (b1 - b0) - taus * b0);
    at::Tensor log_alpha = alpha.log();
    log_alpha.sum().backward();
    grad = taus.grad();
    alpha = alpha.detach();
  }
  return grad * -0.5 / at::sqrt(alpha * (1 - alpha));
}

at::Tensor cal_poly(const at::Tensor& prev_t, int64_t j, const at::Tensor& taus) {
  at::Tensor poly;
  for (int64_t k = 0; k < prev_t.size(0); ++k) {
    if (k == j) continue;
    at::Tensor factor = (taus - prev_t[k]) / (prev_t[j] - prev_t[k]);
    poly = poly.defined() ? poly * factor : factor * 1;
  }
  return poly.defined() ? poly : at::ones_like(taus);
}

at::Tensor integral_2(const at::Tensor& a, const at::Tensor& b, const at::Tensor& start, const at::Tensor& end,
                      const at::Tensor& c) {
  at::Tensor coeff = (end.pow(3) - start.pow(3)) / 3 - (end.pow(2) - start.pow(2)) * (a + b) / 2 + (end - start) * a * b;
  return coeff / ((c - a) * (c - b));
}

at::Tensor integral_3(const at::Tensor& a, const at::Tensor& b, const at::Tensor& c, const at::Tensor& start,
                      const at::Tensor& end, const at::Tensor& d) {
  at::Tensor coeff = (end.pow(4) - start.pow(4)) / 4 - (end.pow(3) - start.pow(3)) * (a + b + c) / 3 +
                     (end.pow(2) - start.pow(2)) * (a * b + a * c + b * c) / 2 - (end - start) * a * b * c;
  return coeff / ((d - a) * (d - b) * (d - c));
}

at::Tensor pick(const at::Tensor& t, int64_t i, int64_t order) {
  std::vector<int64_t> idx;
  for (int64_t k = 0; k < order; ++k) idx.push_back(i - k);
  return t.index({at::tensor(idx, at::kLong)});
}

}  // namespace

std::vector<std::vector<at::Tensor>> get_deis_coeff_list(const at::Tensor& t_steps_in, int64_t max_order,
                                                         const std::string& deis_mode) {
  const int64_t N = 10000;
  std::vector<std::vector<at::Tensor>> C;
  int64_t n = t_steps_in.size(0);
  if (deis_mode == "tab") {
    VpTimes vp = edm2t(t_steps_in);
    const at::Tensor& t_steps = vp.t_steps;
    for (int64_t i = 0; i + 1 < n; ++i) {
      at::Tensor t_cur = t_steps[i], t_next = t_steps[i + 1];
      int64_t order = std::min(i + 1, max_order);
      if (order == 1) {
        C.emplace_back();
        continue;
      }
      at::Tensor taus = at::linspace(t_cur.item<double>(), t_next.item<double>(), N, at::TensorOptions().dtype(at::kFloat));
      at::Tensor dtau = (t_next - t_cur) / N;
      at::Tensor prev_t = pick(t_steps, i, order);
      at::Tensor integrand = cal_integrand(vp.beta_0, vp.beta_1, taus);
      std::vector<at::Tensor> coeffs;
      for (int64_t j = 0; j < order; ++j) {
        at::Tensor poly = cal_poly(prev_t, j, taus);
        coeffs.push_back(at::sum(integrand * poly) * dtau);
      }
      C.push_back(std::move(coeffs));
    }
  } else if (deis_mode == "rhoab") {
    const at::Tensor& t_steps = t_steps_in;
    for (int64_t i = 0; i + 1 < n; ++i) {
      at::Tensor t_cur = t_steps[i], t_next = t_steps[i + 1];
      int64_t order = std::min(i, max_order);
      if (order == 0) {
        C.emplace_back();
        continue;
      }
      at::Tensor p = pick(t_steps, i, order + 1);
      if (order == 1) {
        at::Tensor coeff_cur = ((t_next - p[1]).pow(2) - (t_cur - p[1]).pow(2)) / ((t_cur - p[1]) * 2);
        at::Tensor coeff_prev1 = (t_next - t_cur).pow(2) / ((p[1] - t_cur) * 2);
        C.push_back({coeff_cur, coeff_prev1});
      } else if (order == 2) {
        C.push_back({integral_2(p[1], p[2], t_cur, t_next, t_cur), integral_2(t_cur, p[2], t_cur, t_next, p[1]),
                     integral_2(t_cur, p[1], t_cur, t_next, p[2])});
      } else {
        C.push_back({integral_3(p[1], p[2], p[3], t_cur, t_next, t_cur),
                     integral_3(t_cur, p[2], p[3], t_cur, t_next, p[1]),
                     integral_3(t_cur, p[1], p[3], t_cur, t_next, p[2]),
                     integral_3(t_cur, p[1], p[2], t_cur, t_next, p[3])});
      }
    }
  } else {
    throw ComfyError("ValueError", "deis_mode must be 'tab' or 'rhoab', got '" + deis_mode + "'");
  }
  return C;
}

}  // namespace comfy::ksampling
