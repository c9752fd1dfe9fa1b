// DPM-Solver fast and adaptive (k-diffusion's DPMSolver class) as ComfyUI's ksampler() wraps
// them: sigma_min is the last sigma (the one before it when the last is 0), sigma_max the first.
#include <cmath>
#include <map>

#include "core/error.h"
#include "sampling/k_common.h"

namespace comfy::ksampling {
namespace {

class DPMSolver {
 public:
  explicit DPMSolver(Ctx& ctx) : ctx_(ctx) {}
  using Cache = std::map<std::string, at::Tensor>;

  static at::Tensor t(const at::Tensor& sigma) { return sigma.log().neg(); }
  static at::Tensor sigma(const at::Tensor& t) { return t.neg().exp(); }

  at::Tensor eps(Cache& cache, const std::string& key, const at::Tensor& x, const at::Tensor& t) {
    auto it = cache.find(key);
    if (it != cache.end()) return it->second;
    at::Tensor e = (x - ctx_.model(x, sigma(t) * x.new_ones({x.size(0)}))) / sigma(t);
    cache[key] = e;
    return e;
  }

  at::Tensor step1(const at::Tensor& x, const at::Tensor& t, const at::Tensor& t_next, Cache& cache) {
    at::Tensor h = t_next - t;
    at::Tensor e = eps(cache, "eps", x, t);
    return x - sigma(t_next) * h.expm1() * e;
  }

  at::Tensor step2(const at::Tensor& x, const at::Tensor& t, const at::Tensor& t_next, double r1, Cache& cache) {
    at::Tensor h = t_next - t;
    at::Tensor e = eps(cache, "eps", x, t);
    at::Tensor s1 = t + h * r1;
    at::Tensor u1 = x - sigma(s1) * (h * r1).expm1() * e;
    at::Tensor e_r1 = eps(cache, "eps_r1", u1, s1);
    return x - sigma(t_next) * h.expm1() * e - sigma(t_next) / (2 * r1) * h.expm1() * (e_r1 - e);
  }

  at::Tensor step3(const at::Tensor& x, const at::Tensor& t, const at::Tensor& t_next, Cache& cache) {
    const double r1 = 1.0 / 3, r2 = 2.0 / 3;
    at::Tensor h = t_next - t;
    at::Tensor e = eps(cache, "eps", x, t);
    at::Tensor s1 = t + h * r1;
    at::Tensor s2 = t + h * r2;
    at::Tensor u1 = x - sigma(s1) * (h * r1).expm1() * e;
    at::Tensor e_r1 = eps(cache, "eps_r1", u1, s1);
    at::Tensor u2 = x - sigma(s2) * (h * r2).expm1() * e -
                    sigma(s2) * (r2 / r1) * ((h * r2).expm1() / (h * r2) - 1) * (e_r1 - e);
    at::Tensor e_r2 = eps(cache, "eps_r2", u2, s2);
    return x - sigma(t_next) * h.expm1() * e - sigma(t_next) / r2 * (h.expm1() / h - 1) * (e_r2 - e);
  }

  void info(int64_t i, const at::Tensor& x, const at::Tensor& t, const at::Tensor& t_up, const at::Tensor& denoised) {
    ctx_.report(i, x, denoised, sigma(t), sigma(t_up));
  }

 private:
  Ctx& ctx_;
};

// sigma_min / sigma_max as ComfyUI's dpm_fast_function / dpm_adaptive_function pick them.
std::pair<at::Tensor, at::Tensor> ends(const at::Tensor& sigmas) {
  at::Tensor sigma_min = sigmas[-1];
  if (f(sigma_min) == 0) sigma_min = sigmas[-2];
  if (f(sigma_min) <= 0 || f(sigmas[0]) <= 0)
    throw ComfyError("ValueError", "sigma_min and sigma_max must not be 0");
  return {sigma_min, sigmas[0]};
}

at::Tensor sample_dpm_fast(Ctx& ctx, at::Tensor x, at::Tensor sigmas) {
  if (sigmas.size(0) <= 1) return x;
  auto [sigma_min, sigma_max] = ends(sigmas);
  int64_t nfe = sigmas.size(0) - 1;
  double eta = ctx.opt("eta", 0.0), s_noise = ctx.opt("s_noise", 1.0);
  DPMSolver solver(ctx);
  NoiseSampler noise_sampler = default_noise_sampler(x, ctx.seed);
  at::Tensor t_start = DPMSolver::t(sigma_max.clone()), t_end = DPMSolver::t(sigma_min.clone());
  if (!(f(t_end) > f(t_start)) && eta != 0) throw ComfyError("ValueError", "eta must be 0 for reverse sampling");
  int64_t m = nfe / 3 + 1;
  at::Tensor ts = at::linspace(t_start.item<double>(), t_end.item<double>(), m + 1, at::TensorOptions().dtype(at::kFloat));
  std::vector<int> orders;
  if (nfe % 3 == 0) {
    for (int64_t k = 0; k < m - 2; ++k) orders.push_back(3);
    orders.push_back(2);
    orders.push_back(1);
  } else {
    for (int64_t k = 0; k < m - 1; ++k) orders.push_back(3);
    orders.push_back(static_cast<int>(nfe % 3));
  }
  for (size_t i = 0; i < orders.size(); ++i) {
    DPMSolver::Cache cache;
    at::Tensor t = ts[static_cast<int64_t>(i)], t_next = ts[static_cast<int64_t>(i) + 1];
    at::Tensor t_next_ = t_next, su = at::zeros({}, at::kFloat);
    if (eta != 0) {
      auto [sd, su_] = get_ancestral_step(DPMSolver::sigma(t), DPMSolver::sigma(t_next), eta);
      t_next_ = at::minimum(t_end, DPMSolver::t(sd));
      su = (DPMSolver::sigma(t_next).pow(2) - DPMSolver::sigma(t_next_).pow(2)).pow(0.5);
    }
    at::Tensor e = solver.eps(cache, "eps", x, t);
    at::Tensor denoised = x - DPMSolver::sigma(t) * e;
    solver.info(static_cast<int64_t>(i), x, t, t, denoised);
    if (orders[i] == 1) x = solver.step1(x, t, t_next_, cache);
    else if (orders[i] == 2) x = solver.step2(x, t, t_next_, 0.5, cache);
    else x = solver.step3(x, t, t_next_, cache);
    x = x + su * s_noise * noise_sampler(DPMSolver::sigma(t), DPMSolver::sigma(t_next));
  }
  return x;
}

at::Tensor sample_dpm_adaptive(Ctx& ctx, at::Tensor x, at::Tensor sigmas) {
  if (sigmas.size(0) <= 1) return x;
  auto [sigma_min, sigma_max] = ends(sigmas);
  int64_t order = static_cast<int64_t>(ctx.opt("order", 3));
  double rtol_v = ctx.opt("rtol", 0.05), atol_v = ctx.opt("atol", 0.0078), h_init = ctx.opt("h_init", 0.05);
  double pcoeff = ctx.opt("pcoeff", 0.0), icoeff = ctx.opt("icoeff", 1.0), dcoeff = ctx.opt("dcoeff", 0.0);
  double accept_safety = ctx.opt("accept_safety", 0.81), eta = ctx.opt("eta", 0.0), s_noise = ctx.opt("s_noise", 1.0);
  if (order != 2 && order != 3) throw ComfyError("ValueError", "order should be 2 or 3");
  DPMSolver solver(ctx);
  NoiseSampler noise_sampler = default_noise_sampler(x, ctx.seed);
  at::Tensor t_start = DPMSolver::t(sigma_max.clone()), t_end = DPMSolver::t(sigma_min.clone());
  bool forward = f(t_end) > f(t_start);
  if (!forward && eta != 0) throw ComfyError("ValueError", "eta must be 0 for reverse sampling");
  h_init = std::fabs(h_init) * (forward ? 1 : -1);
  at::Tensor atol = at::scalar_tensor(atol_v, at::kFloat), rtol = at::scalar_tensor(rtol_v, at::kFloat);
  at::Tensor s = t_start;
  at::Tensor x_prev = x;
  // PIDStepSizeController
  double order_eff = eta != 0 ? 1.5 : static_cast<double>(order);
  double h = h_init;
  double b1 = (pcoeff + icoeff + dcoeff) / order_eff, b2 = -(pcoeff + 2 * dcoeff) / order_eff, b3 = dcoeff / order_eff;
  std::vector<double> errs;
  int64_t steps = 0;
  while (forward ? truth(s < t_end - 1e-5) : truth(s > t_end + 1e-5)) {
    DPMSolver::Cache cache;
    at::Tensor t = forward ? at::minimum(t_end, s + h) : at::maximum(t_end, s + h);
    at::Tensor t_ = t, su = at::zeros({}, at::kFloat);
    if (eta != 0) {
      auto [sd, su_] = get_ancestral_step(DPMSolver::sigma(s), DPMSolver::sigma(t), eta);
      t_ = at::minimum(t_end, DPMSolver::t(sd));
      su = (DPMSolver::sigma(t).pow(2) - DPMSolver::sigma(t_).pow(2)).pow(0.5);
    }
    at::Tensor e = solver.eps(cache, "eps", x, s);
    at::Tensor denoised = x - DPMSolver::sigma(s) * e;
    at::Tensor x_low, x_high;
    if (order == 2) {
      x_low = solver.step1(x, s, t_, cache);
      x_high = solver.step2(x, s, t_, 0.5, cache);
    } else {
      x_low = solver.step2(x, s, t_, 1.0 / 3, cache);
      x_high = solver.step3(x, s, t_, cache);
    }
    at::Tensor delta = at::maximum(atol, rtol * at::maximum(x_low.abs(), x_prev.abs()));
    at::Tensor error = at::linalg_vector_norm((x_low - x_high) / delta, 2) / std::pow(static_cast<double>(x.numel()), 0.5);
    // propose_step
    double inv_error = 1 / (error.item<float>() + 1e-8);
    if (errs.empty()) errs = {inv_error, inv_error, inv_error};
    errs[0] = inv_error;
    double factor = std::pow(errs[0], b1) * std::pow(errs[1], b2) * std::pow(errs[2], b3);
    factor = 1 + std::atan(factor - 1);
    bool accept = factor >= accept_safety;
    if (accept) {
      errs[2] = errs[1];
      errs[1] = errs[0];
    }
    h *= factor;
    if (accept) {
      x_prev = x_low;
      x = x_high + su * s_noise * noise_sampler(DPMSolver::sigma(s), DPMSolver::sigma(t));
      s = t;
    }
    steps += 1;
    solver.info(steps - 1, x, s, s, denoised);
  }
  return x;
}

}  // namespace

SampleFn find_dpm_solver(const std::string& name) {
  if (name == "dpm_fast") return sample_dpm_fast;
  if (name == "dpm_adaptive") return sample_dpm_adaptive;
  return nullptr;
}

}  // namespace comfy::ksampling
