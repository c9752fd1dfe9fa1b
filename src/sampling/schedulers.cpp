// ComfyUI's sigma schedules (comfy/samplers.py SCHEDULER_HANDLERS) and k-diffusion's
// get_sigmas_* functions. Each one follows ComfyUI's dtype path: torch.linspace and the
// tensor math in float32, the Python-list schedules in float64 and converted to float32 at
// the end (torch.FloatTensor), scipy's beta quantile in float64.
#include "sampling/schedulers.h"

#include <cmath>
#include <limits>

#include "core/error.h"
#include "sampling/sampler.h"

namespace comfy {
namespace {

at::Tensor float_tensor(const std::vector<double>& values) {
  at::Tensor t = at::empty({static_cast<int64_t>(values.size())}, at::kFloat);
  auto* p = t.data_ptr<float>();
  for (size_t i = 0; i < values.size(); ++i) p[i] = static_cast<float>(values[i]);
  return t;
}

at::Tensor append_zero(const at::Tensor& x) { return at::cat({x, x.new_zeros({1})}); }

at::Tensor linspace_f32(double start, double end, int64_t n) {
  return at::linspace(start, end, n, at::TensorOptions().dtype(at::kFloat));
}

// Continued fraction of the incomplete beta function (modified Lentz).
double beta_continued_fraction(double a, double b, double x) {
  const double tiny = 1e-300, eps = 1e-16;
  double qab = a + b, qap = a + 1.0, qam = a - 1.0;
  double c = 1.0, d = 1.0 - qab * x / qap;
  if (std::fabs(d) < tiny) d = tiny;
  d = 1.0 / d;
  double h = d;
  for (int m = 1; m <= 10000; ++m) {
    double m2 = 2.0 * m;
    double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
    d = 1.0 + aa * d;
    if (std::fabs(d) < tiny) d = tiny;
    c = 1.0 + aa / c;
    if (std::fabs(c) < tiny) c = tiny;
    d = 1.0 / d;
    h *= d * c;
    aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
    d = 1.0 + aa * d;
    if (std::fabs(d) < tiny) d = tiny;
    c = 1.0 + aa / c;
    if (std::fabs(c) < tiny) c = tiny;
    d = 1.0 / d;
    double del = d * c;
    h *= del;
    if (std::fabs(del - 1.0) < eps) break;
  }
  return h;
}

}  // namespace

double regularized_incomplete_beta(double x, double a, double b) {
  if (x <= 0.0) return 0.0;
  if (x >= 1.0) return 1.0;
  double log_front = std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x);
  double front = std::exp(log_front);
  if (x < (a + 1.0) / (a + b + 2.0)) return front * beta_continued_fraction(a, b, x) / a;
  return 1.0 - front * beta_continued_fraction(b, a, 1.0 - x) / b;
}

double beta_ppf(double p, double a, double b) {
  if (std::isnan(p) || p < 0.0 || p > 1.0) return std::numeric_limits<double>::quiet_NaN();
  if (p == 0.0) return 0.0;
  if (p == 1.0) return 1.0;
  // Symmetric shapes (the beta scheduler's 0.6, 0.6): the median is exactly 0.5 (scipy gives
  // 0.5, and rint(0.5 * 999) = 500 depends on it), the upper half mirrors the lower one.
  if (a == b) {
    if (p == 0.5) return 0.5;
    if (p > 0.5) return 1.0 - beta_ppf(1.0 - p, a, b);
  }
  // The CDF is increasing: bisect to the last representable bit.
  double lo = 0.0, hi = 1.0;
  for (int it = 0; it < 200; ++it) {
    double mid = 0.5 * (lo + hi);
    if (mid <= lo || mid >= hi) break;
    if (regularized_incomplete_beta(mid, a, b) < p) lo = mid;
    else hi = mid;
  }
  return 0.5 * (lo + hi);
}

const std::vector<std::string>& scheduler_names() {
  static const std::vector<std::string> names = {"simple", "sgm_uniform", "karras", "exponential", "ddim_uniform",
                                                 "beta", "normal", "linear_quadratic", "kl_optimal"};
  return names;
}

at::Tensor simple_scheduler(const ModelSampling& s, int64_t steps) {
  const at::Tensor& sig = s.sigmas();
  int64_t n = sig.size(0);
  double ss = static_cast<double>(n) / static_cast<double>(steps);
  std::vector<double> sigs;
  for (int64_t x = 0; x < steps; ++x) {
    int64_t idx = n - (1 + static_cast<int64_t>(static_cast<double>(x) * ss));
    sigs.push_back(sig[idx].item<float>());
  }
  sigs.push_back(0.0);
  return float_tensor(sigs);
}

at::Tensor ddim_scheduler(const ModelSampling& s, int64_t steps) {
  const at::Tensor& sig = s.sigmas();
  int64_t n = sig.size(0);
  std::vector<double> sigs;
  int64_t x = 1;
  if (std::fabs(static_cast<double>(sig[x].item<float>())) <= 0.00001) {
    steps += 1;
  } else {
    sigs.push_back(0.0);
  }
  int64_t ss = std::max<int64_t>(n / steps, 1);
  while (x < n) {
    sigs.push_back(sig[x].item<float>());
    x += ss;
  }
  std::reverse(sigs.begin(), sigs.end());
  return float_tensor(sigs);
}

at::Tensor normal_scheduler(const ModelSampling& s, int64_t steps, bool sgm) {
  int64_t start = s.timestep(s.sigmas()[-1]).item<int64_t>();
  int64_t end = s.timestep(s.sigmas()[0]).item<int64_t>();
  bool append = true;
  at::Tensor timesteps;
  if (sgm) {
    timesteps = linspace_f32(static_cast<double>(start), static_cast<double>(end), steps + 1).slice(0, 0, steps);
  } else {
    double sigma_end = s.sigma(at::scalar_tensor(end, at::kLong)).item<float>();
    if (std::fabs(sigma_end) <= 0.00001) {
      steps += 1;
      append = false;
    }
    timesteps = linspace_f32(static_cast<double>(start), static_cast<double>(end), steps);
  }
  std::vector<double> sigs;
  for (int64_t x = 0; x < timesteps.size(0); ++x) sigs.push_back(s.sigma(timesteps[x]).item<float>());
  if (append) sigs.push_back(0.0);
  return float_tensor(sigs);
}

at::Tensor beta_scheduler(const ModelSampling& s, int64_t steps, double alpha, double beta) {
  int64_t total_timesteps = s.sigmas().size(0) - 1;
  std::vector<double> sigs;
  double last_t = -1;
  double step = 1.0 / static_cast<double>(steps);  // numpy.linspace(0, 1, steps, endpoint=False)
  for (int64_t i = 0; i < steps; ++i) {
    double ts = 1.0 - static_cast<double>(i) * step;
    double t = std::nearbyint(beta_ppf(ts, alpha, beta) * static_cast<double>(total_timesteps));
    if (t != last_t) sigs.push_back(s.sigmas()[static_cast<int64_t>(t)].item<float>());
    last_t = t;
  }
  sigs.push_back(0.0);
  return float_tensor(sigs);
}

at::Tensor linear_quadratic_schedule(const ModelSampling& s, int64_t steps, double threshold_noise,
                                     int64_t linear_steps) {
  std::vector<double> schedule;
  if (steps == 1) {
    schedule = {1.0, 0.0};
  } else {
    if (linear_steps < 0) linear_steps = steps / 2;
    for (int64_t i = 0; i < linear_steps; ++i)
      schedule.push_back(static_cast<double>(i) * threshold_noise / static_cast<double>(linear_steps));
    double ls = static_cast<double>(linear_steps);
    double threshold_noise_step_diff = ls - threshold_noise * static_cast<double>(steps);
    double quadratic_steps = static_cast<double>(steps - linear_steps);
    double quadratic_coef = threshold_noise_step_diff / (ls * std::pow(quadratic_steps, 2));
    double linear_coef = threshold_noise / ls - 2 * threshold_noise_step_diff / std::pow(quadratic_steps, 2);
    double constant = quadratic_coef * std::pow(ls, 2);
    for (int64_t i = linear_steps; i < steps; ++i) {
      double di = static_cast<double>(i);
      schedule.push_back(quadratic_coef * std::pow(di, 2) + linear_coef * di + constant);
    }
    schedule.push_back(1.0);
    for (double& v : schedule) v = 1.0 - v;
  }
  return float_tensor(schedule) * s.sigmas()[-1];
}

at::Tensor kl_optimal_scheduler(int64_t n, double sigma_min, double sigma_max) {
  at::Tensor adj = at::arange(n, at::TensorOptions().dtype(at::kFloat)).div_(n - 1);
  at::Tensor sigmas = adj.new_zeros({n + 1});
  sigmas.slice(0, 0, n).copy_((adj * std::atan(sigma_min) + (1 - adj) * std::atan(sigma_max)).tan_());
  return sigmas;
}

at::Tensor get_sigmas_karras(int64_t n, double sigma_min, double sigma_max, double rho) {
  at::Tensor ramp = linspace_f32(0, 1, n);
  double min_inv_rho = std::pow(sigma_min, 1 / rho);
  double max_inv_rho = std::pow(sigma_max, 1 / rho);
  at::Tensor sigmas = (ramp * (min_inv_rho - max_inv_rho) + max_inv_rho).pow(rho);
  return append_zero(sigmas);
}

at::Tensor get_sigmas_exponential(int64_t n, double sigma_min, double sigma_max) {
  return append_zero(linspace_f32(std::log(sigma_max), std::log(sigma_min), n).exp());
}

at::Tensor get_sigmas_polyexponential(int64_t n, double sigma_min, double sigma_max, double rho) {
  at::Tensor ramp = linspace_f32(1, 0, n).pow(rho);
  at::Tensor sigmas = at::exp(ramp * (std::log(sigma_max) - std::log(sigma_min)) + std::log(sigma_min));
  return append_zero(sigmas);
}

at::Tensor get_sigmas_vp(int64_t n, double beta_d, double beta_min, double eps_s) {
  at::Tensor t = linspace_f32(1, eps_s, n);
  at::Tensor sigmas = at::sqrt(at::special_expm1(t.pow(2) * beta_d / 2 + t * beta_min));
  return append_zero(sigmas);
}

at::Tensor get_sigmas_laplace(int64_t n, double sigma_min, double sigma_max, double mu, double beta) {
  const double epsilon = 1e-5;
  at::Tensor x = linspace_f32(0, 1, n);
  at::Tensor half = 0.5 - x;
  at::Tensor lmb = mu - at::sign(half) * beta * at::log(1 - 2 * at::abs(half) + epsilon);
  return at::clamp(at::exp(lmb), sigma_min, sigma_max);
}

at::Tensor calculate_sigmas(const ModelSampling& sampling, const std::string& scheduler, int64_t steps) {
  if (scheduler == "simple") return simple_scheduler(sampling, steps);
  if (scheduler == "sgm_uniform") return normal_scheduler(sampling, steps, true);
  if (scheduler == "karras") return get_sigmas_karras(steps, sampling.sigma_min(), sampling.sigma_max());
  if (scheduler == "exponential") return get_sigmas_exponential(steps, sampling.sigma_min(), sampling.sigma_max());
  if (scheduler == "ddim_uniform") return ddim_scheduler(sampling, steps);
  if (scheduler == "beta") return beta_scheduler(sampling, steps);
  if (scheduler == "normal") return normal_scheduler(sampling, steps, false);
  if (scheduler == "linear_quadratic") return linear_quadratic_schedule(sampling, steps);
  if (scheduler == "kl_optimal") return kl_optimal_scheduler(steps, sampling.sigma_min(), sampling.sigma_max());
  throw ComfyError("ValueError", "error invalid scheduler " + scheduler);
}

at::Tensor ksampler_sigmas(const ModelSampling& sampling, const std::string& sampler_name,
                           const std::string& scheduler, int64_t steps, double denoise) {
  auto compute = [&](int64_t n) {
    bool discard = discards_penultimate_sigma(sampler_name);
    if (discard) n += 1;
    at::Tensor sigmas = calculate_sigmas(sampling, scheduler, n);
    if (discard) sigmas = at::cat({sigmas.slice(0, 0, sigmas.size(0) - 2), sigmas.slice(0, sigmas.size(0) - 1)});
    return sigmas;
  };
  if (denoise > 0.9999) return compute(steps);
  if (denoise <= 0.0) return at::empty({0}, at::kFloat);
  int64_t new_steps = static_cast<int64_t>(static_cast<double>(steps) / denoise);
  at::Tensor sigmas = compute(new_steps);
  return sigmas.slice(0, sigmas.size(0) - (steps + 1));
}

}  // namespace comfy
