// SA-Solver (stochastic Adams predictor-corrector; comfy/k_diffusion/sa_solver.py and
// sample_sa_solver). Its stochasticity follows the tau function of SamplerSASolver: options
// "eta" (1), "sde_start_percent" (0.2) and "sde_end_percent" (0.8) choose it.
#include <cmath>

#include "sampling/k_common.h"

namespace comfy::ksampling {
namespace {

at::Tensor compute_exponential_coeffs(const at::Tensor& s, const at::Tensor& t, int64_t solver_order, double tau_t) {
  double tau_mul = 1 + std::pow(tau_t, 2);
  at::Tensor h = t - s;
  at::Tensor p = at::arange(solver_order, s.options());
  at::Tensor product_terms_factored = at::pow(t, p) - at::pow(s, p) * (h * -tau_mul).exp();
  at::Tensor recursive_depth_mat = p.unsqueeze(1) - p.unsqueeze(0);
  at::Tensor log_factorial = (p + 1).lgamma();
  at::Tensor recursive_coeff_mat = log_factorial.unsqueeze(1) - log_factorial.unsqueeze(0);
  if (tau_t > 0) recursive_coeff_mat = recursive_coeff_mat - (recursive_depth_mat * std::log(tau_mul));
  at::Tensor signs = at::where(at::remainder(recursive_depth_mat, 2) == 0, at::scalar_tensor(1.0, at::kFloat),
                               at::scalar_tensor(-1.0, at::kFloat));
  recursive_coeff_mat = (recursive_coeff_mat.exp() * signs).tril();
  return at::matmul(recursive_coeff_mat, product_terms_factored);
}

at::Tensor simple_b_coeffs(const at::Tensor& sigma_next, const at::Tensor& curr_lambdas, const at::Tensor& lambda_s,
                           const at::Tensor& lambda_t, double tau_t, bool is_corrector_step) {
  double tau_mul = 1 + std::pow(tau_t, 2);
  at::Tensor h = lambda_t - lambda_s;
  at::Tensor alpha_t = sigma_next * lambda_t.exp();
  at::Tensor b_1, b_2;
  if (is_corrector_step) {
    b_1 = alpha_t * (h * (0.5 * tau_mul));
    b_2 = alpha_t * (-h * tau_mul).expm1().neg() - b_1;
  } else {
    b_2 = alpha_t * (h.pow(2) * (0.5 * tau_mul)) / (curr_lambdas[-2] - lambda_s);
    b_1 = alpha_t * (-h * tau_mul).expm1().neg() - b_2;
  }
  return at::stack({b_2, b_1});
}

at::Tensor b_coeffs(const at::Tensor& sigma_next, const at::Tensor& curr_lambdas, const at::Tensor& lambda_s,
                    const at::Tensor& lambda_t, double tau_t, bool simple_order_2, bool is_corrector_step) {
  int64_t n = curr_lambdas.size(0);
  if (simple_order_2 && n == 2)
    return simple_b_coeffs(sigma_next, curr_lambdas, lambda_s, lambda_t, tau_t, is_corrector_step);
  at::Tensor exp_integral_coeffs = compute_exponential_coeffs(lambda_s, lambda_t, n, tau_t);
  // torch.vander(x, N, increasing=True): columns x^0 .. x^(N-1).
  at::Tensor vander = at::vander(curr_lambdas, n, true).t();
  at::Tensor lagrange_integrals = at::linalg_solve(vander, exp_integral_coeffs);
  at::Tensor alpha_t = sigma_next * lambda_t.exp();
  return alpha_t * lagrange_integrals;
}

at::Tensor sa_solver(Ctx& ctx, at::Tensor x, at::Tensor sigmas, bool use_pece) {
  if (sigmas.size(0) <= 1) return x;
  double s_noise = ctx.opt("s_noise", 1.0);
  int64_t predictor_order = static_cast<int64_t>(ctx.opt("predictor_order", 3));
  int64_t corrector_order = static_cast<int64_t>(ctx.opt("corrector_order", 4));
  bool simple_order_2 = ctx.opt("simple_order_2", 0.0) != 0.0;
  double eta = ctx.opt("eta", 1.0);
  double start_sigma = ctx.sampling->percent_to_sigma(ctx.opt("sde_start_percent", 0.2));
  double end_sigma = ctx.sampling->percent_to_sigma(ctx.opt("sde_end_percent", 0.8));
  auto tau_func = [&](const at::Tensor& sigma) {
    if (eta <= 0) return 0.0;
    double s = sigma.item<float>();
    return (start_sigma >= s && s >= end_sigma) ? eta : 0.0;
  };
  NoiseSampler noise_sampler = default_noise_sampler(x, ctx.seed);
  at::Tensor lambdas = sigmas.log().neg();
  int64_t max_used_order = std::max(predictor_order, corrector_order);
  at::Tensor x_pred = x;
  at::Tensor h = at::zeros({}, at::kFloat);
  double tau_t = 0.0;
  at::Tensor noise;
  std::vector<at::Tensor> pred_list;
  bool lower_order_to_end = f(sigmas[-1]) == 0;
  int64_t n = sigmas.size(0);
  for (int64_t i = 0; i < n - 1; ++i) {
    at::Tensor denoised = ctx.call(x_pred, sigmas[i]);
    ctx.report(i, x_pred, denoised, sigmas[i], sigmas[i]);
    pred_list.push_back(denoised);
    if (static_cast<int64_t>(pred_list.size()) > max_used_order) pred_list.erase(pred_list.begin());
    int64_t listed = static_cast<int64_t>(pred_list.size());
    int64_t predictor_order_used = std::min(predictor_order, listed);
    int64_t corrector_order_used =
        (i == 0 || (f(sigmas[i + 1]) == 0 && !use_pece)) ? 0 : std::min(corrector_order, listed);
    if (lower_order_to_end) {
      predictor_order_used = std::min(predictor_order_used, n - 2 - i);
      corrector_order_used = std::min(corrector_order_used, n - 1 - i);
    }
    auto stacked = [&](int64_t k) {
      std::vector<at::Tensor> last(pred_list.end() - k, pred_list.end());
      return at::stack(last, 1);
    };
    if (corrector_order_used == 0) {
      x = x_pred;
    } else {
      at::Tensor curr_lambdas = lambdas.slice(0, i - corrector_order_used + 1, i + 1);
      at::Tensor b = b_coeffs(sigmas[i], curr_lambdas, lambdas[i - 1], lambdas[i], tau_t, simple_order_2, true);
      at::Tensor corr_res = at::tensordot(stacked(corrector_order_used), b, {1}, {0});
      x = sigmas[i] / sigmas[i - 1] * (h * -std::pow(tau_t, 2)).exp() * x + corr_res;
      if (tau_t > 0 && s_noise > 0) x = x + noise;
      if (use_pece) {
        denoised = ctx.call(x, sigmas[i]);
        pred_list.back() = denoised;
      }
    }
    if (f(sigmas[i + 1]) == 0) {
      x_pred = denoised;
    } else {
      tau_t = tau_func(sigmas[i + 1]);
      at::Tensor curr_lambdas = lambdas.slice(0, i - predictor_order_used + 1, i + 1);
      at::Tensor b = b_coeffs(sigmas[i + 1], curr_lambdas, lambdas[i], lambdas[i + 1], tau_t, simple_order_2, false);
      at::Tensor pred_res = at::tensordot(stacked(predictor_order_used), b, {1}, {0});
      h = lambdas[i + 1] - lambdas[i];
      x_pred = sigmas[i + 1] / sigmas[i] * (h * -std::pow(tau_t, 2)).exp() * x + pred_res;
      if (tau_t > 0 && s_noise > 0) {
        noise = noise_sampler(sigmas[i], sigmas[i + 1]) * sigmas[i + 1] *
                (h * (-2 * std::pow(tau_t, 2))).expm1().neg().sqrt() * s_noise;
        x_pred = x_pred + noise;
      }
    }
  }
  return x_pred;
}

at::Tensor sample_sa_solver(Ctx& ctx, at::Tensor x, at::Tensor sigmas) {
  return sa_solver(ctx, x, sigmas, ctx.opt("use_pece", 0.0) != 0.0);
}
at::Tensor sample_sa_solver_pece(Ctx& ctx, at::Tensor x, at::Tensor sigmas) { return sa_solver(ctx, x, sigmas, true); }

}  // namespace

SampleFn find_sa_solver(const std::string& name) {
  if (name == "sa_solver") return sample_sa_solver;
  if (name == "sa_solver_pece") return sample_sa_solver_pece;
  return nullptr;
}

}  // namespace comfy::ksampling
