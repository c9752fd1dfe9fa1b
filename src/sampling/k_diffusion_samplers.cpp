// The classic k-diffusion samplers (comfy/k_diffusion/sampling.py): euler, euler_ancestral,
// heun, heunpp2, dpm_2, dpm_2_ancestral, lms, dpmpp_2s_ancestral, dpmpp_2m, ddpm, lcm.
// Only the EPS/V (non-CONST) paths: SD1/SD2 models use ModelSamplingDiscrete.
#include <cmath>
#include <deque>
#include <limits>

#include "sampling/k_common.h"

namespace comfy::ksampling {
namespace {

// Karras "churn": sigma_hat = sigma * (gamma + 1), with fresh noise when gamma > 0 (drawn from
// the global generator as k-diffusion's randn_like; no ComfyUI node sets s_churn).
at::Tensor churn(const Ctx& ctx, at::Tensor& x, const at::Tensor& sigmas, int64_t i) {
  double s_churn = ctx.opt("s_churn", 0.0);
  if (s_churn <= 0) return sigmas[i];
  double s_tmin = ctx.opt("s_tmin", 0.0);
  double s_tmax = ctx.opt("s_tmax", std::numeric_limits<double>::infinity());
  double s_noise = ctx.opt("s_noise", 1.0);
  float s = f(sigmas[i]);
  double gamma = (s_tmin <= s && s <= s_tmax)
                     ? std::min(s_churn / static_cast<double>(sigmas.size(0) - 1), std::pow(2.0, 0.5) - 1)
                     : 0.0;
  at::Tensor sigma_hat = sigmas[i] * (gamma + 1);
  if (gamma > 0) {
    at::Tensor eps = at::randn_like(x) * s_noise;
    x = x + eps * (sigma_hat.pow(2) - sigmas[i].pow(2)).pow(0.5);
  }
  return sigma_hat;
}

at::Tensor sample_euler(Ctx& ctx, at::Tensor x, at::Tensor sigmas) {
  for (int64_t i = 0; i < sigmas.size(0) - 1; ++i) {
    at::Tensor sigma_hat = churn(ctx, x, sigmas, i);
    at::Tensor denoised = ctx.call(x, sigma_hat);
    at::Tensor d = to_d(x, sigma_hat, denoised);
    ctx.report(i, x, denoised, sigmas[i], sigma_hat);
    at::Tensor dt = sigmas[i + 1] - sigma_hat;
    x = x + d * dt;
  }
  return x;
}

at::Tensor sample_euler_ancestral(Ctx& ctx, at::Tensor x, at::Tensor sigmas) {
  double eta = ctx.opt("eta", 1.0), s_noise = ctx.opt("s_noise", 1.0);
  NoiseSampler noise_sampler = default_noise_sampler(x, ctx.seed);
  for (int64_t i = 0; i < sigmas.size(0) - 1; ++i) {
    at::Tensor denoised = ctx.call(x, sigmas[i]);
    auto [sigma_down, sigma_up] = get_ancestral_step(sigmas[i], sigmas[i + 1], eta);
    ctx.report(i, x, denoised, sigmas[i], sigmas[i]);
    if (f(sigma_down) == 0) {
      x = denoised;
    } else {
      at::Tensor d = to_d(x, sigmas[i], denoised);
      at::Tensor dt = sigma_down - sigmas[i];
      x = x + d * dt + noise_sampler(sigmas[i], sigmas[i + 1]) * s_noise * sigma_up;
    }
  }
  return x;
}

at::Tensor sample_heun(Ctx& ctx, at::Tensor x, at::Tensor sigmas) {
  for (int64_t i = 0; i < sigmas.size(0) - 1; ++i) {
    at::Tensor sigma_hat = churn(ctx, x, sigmas, i);
    at::Tensor denoised = ctx.call(x, sigma_hat);
    at::Tensor d = to_d(x, sigma_hat, denoised);
    ctx.report(i, x, denoised, sigmas[i], sigma_hat);
    at::Tensor dt = sigmas[i + 1] - sigma_hat;
    if (f(sigmas[i + 1]) == 0) {
      x = x + d * dt;
    } else {
      at::Tensor x_2 = x + d * dt;
      at::Tensor denoised_2 = ctx.call(x_2, sigmas[i + 1]);
      at::Tensor d_2 = to_d(x_2, sigmas[i + 1], denoised_2);
      at::Tensor d_prime = (d + d_2) / 2;
      x = x + d_prime * dt;
    }
  }
  return x;
}

at::Tensor sample_heunpp2(Ctx& ctx, at::Tensor x, at::Tensor sigmas) {
  int64_t n = sigmas.size(0);
  float s_end = f(sigmas[-1]);
  for (int64_t i = 0; i < n - 1; ++i) {
    at::Tensor sigma_hat = churn(ctx, x, sigmas, i);
    at::Tensor denoised = ctx.call(x, sigma_hat);
    at::Tensor d = to_d(x, sigma_hat, denoised);
    ctx.report(i, x, denoised, sigmas[i], sigma_hat);
    at::Tensor dt = sigmas[i + 1] - sigma_hat;
    if (f(sigmas[i + 1]) == s_end) {
      x = x + d * dt;
    } else if (f(sigmas[i + 2]) == s_end) {
      at::Tensor x_2 = x + d * dt;
      at::Tensor denoised_2 = ctx.call(x_2, sigmas[i + 1]);
      at::Tensor d_2 = to_d(x_2, sigmas[i + 1], denoised_2);
      at::Tensor w = sigmas[0] * 2;
      at::Tensor w2 = sigmas[i + 1] / w;
      at::Tensor w1 = 1 - w2;
      at::Tensor d_prime = d * w1 + d_2 * w2;
      x = x + d_prime * dt;
    } else {
      at::Tensor x_2 = x + d * dt;
      at::Tensor denoised_2 = ctx.call(x_2, sigmas[i + 1]);
      at::Tensor d_2 = to_d(x_2, sigmas[i + 1], denoised_2);
      at::Tensor dt_2 = sigmas[i + 2] - sigmas[i + 1];
      at::Tensor x_3 = x_2 + d_2 * dt_2;
      at::Tensor denoised_3 = ctx.call(x_3, sigmas[i + 2]);
      at::Tensor d_3 = to_d(x_3, sigmas[i + 2], denoised_3);
      at::Tensor w = sigmas[0] * 3;
      at::Tensor w2 = sigmas[i + 1] / w;
      at::Tensor w3 = sigmas[i + 2] / w;
      at::Tensor w1 = 1 - w2 - w3;
      at::Tensor d_prime = w1 * d + w2 * d_2 + w3 * d_3;
      x = x + d_prime * dt;
    }
  }
  return x;
}

at::Tensor sample_dpm_2(Ctx& ctx, at::Tensor x, at::Tensor sigmas) {
  for (int64_t i = 0; i < sigmas.size(0) - 1; ++i) {
    at::Tensor sigma_hat = churn(ctx, x, sigmas, i);
    at::Tensor denoised = ctx.call(x, sigma_hat);
    at::Tensor d = to_d(x, sigma_hat, denoised);
    ctx.report(i, x, denoised, sigmas[i], sigma_hat);
    if (f(sigmas[i + 1]) == 0) {
      at::Tensor dt = sigmas[i + 1] - sigma_hat;
      x = x + d * dt;
    } else {
      at::Tensor sigma_mid = sigma_hat.log().lerp(sigmas[i + 1].log(), 0.5).exp();
      at::Tensor dt_1 = sigma_mid - sigma_hat;
      at::Tensor dt_2 = sigmas[i + 1] - sigma_hat;
      at::Tensor x_2 = x + d * dt_1;
      at::Tensor denoised_2 = ctx.call(x_2, sigma_mid);
      at::Tensor d_2 = to_d(x_2, sigma_mid, denoised_2);
      x = x + d_2 * dt_2;
    }
  }
  return x;
}

at::Tensor sample_dpm_2_ancestral(Ctx& ctx, at::Tensor x, at::Tensor sigmas) {
  double eta = ctx.opt("eta", 1.0), s_noise = ctx.opt("s_noise", 1.0);
  NoiseSampler noise_sampler = default_noise_sampler(x, ctx.seed);
  for (int64_t i = 0; i < sigmas.size(0) - 1; ++i) {
    at::Tensor denoised = ctx.call(x, sigmas[i]);
    auto [sigma_down, sigma_up] = get_ancestral_step(sigmas[i], sigmas[i + 1], eta);
    ctx.report(i, x, denoised, sigmas[i], sigmas[i]);
    at::Tensor d = to_d(x, sigmas[i], denoised);
    if (f(sigma_down) == 0) {
      at::Tensor dt = sigma_down - sigmas[i];
      x = x + d * dt;
    } else {
      at::Tensor sigma_mid = sigmas[i].log().lerp(sigma_down.log(), 0.5).exp();
      at::Tensor dt_1 = sigma_mid - sigmas[i];
      at::Tensor dt_2 = sigma_down - sigmas[i];
      at::Tensor x_2 = x + d * dt_1;
      at::Tensor denoised_2 = ctx.call(x_2, sigma_mid);
      at::Tensor d_2 = to_d(x_2, sigma_mid, denoised_2);
      x = x + d_2 * dt_2;
      x = x + noise_sampler(sigmas[i], sigmas[i + 1]) * s_noise * sigma_up;
    }
  }
  return x;
}

// linear_multistep_coeff: the integral over [t_i, t_i+1] of the Lagrange basis polynomial j.
// scipy's quad is exact for these low-degree polynomials; Gauss-Legendre with 4 nodes too. The
// denominators are float32 differences as numpy computes them on the float32 sigma array.
double linear_multistep_coeff(int64_t order, const std::vector<float>& t, int64_t i, int64_t j) {
  auto fn = [&](double tau) {
    double prod = 1.0;
    for (int64_t k = 0; k < order; ++k) {
      if (j == k) continue;
      float den = t[static_cast<size_t>(i - j)] - t[static_cast<size_t>(i - k)];
      prod *= (tau - static_cast<double>(t[static_cast<size_t>(i - k)])) / static_cast<double>(den);
    }
    return prod;
  };
  static const double nodes[4] = {-0.8611363115940526, -0.3399810435848563, 0.3399810435848563,
                                  0.8611363115940526};
  static const double weights[4] = {0.3478548451374538, 0.6521451548625461, 0.6521451548625461,
                                    0.3478548451374538};
  double a = t[static_cast<size_t>(i)], b = t[static_cast<size_t>(i + 1)];
  double half = (b - a) / 2, mid = (a + b) / 2, sum = 0.0;
  for (int q = 0; q < 4; ++q) sum += weights[q] * fn(mid + half * nodes[q]);
  return sum * half;
}

at::Tensor sample_lms(Ctx& ctx, at::Tensor x, at::Tensor sigmas) {
  int64_t order = static_cast<int64_t>(ctx.opt("order", 4));
  at::Tensor sc = sigmas.to(at::kFloat).contiguous();
  std::vector<float> t(sc.data_ptr<float>(), sc.data_ptr<float>() + sc.numel());
  std::deque<at::Tensor> ds;
  for (int64_t i = 0; i < sigmas.size(0) - 1; ++i) {
    at::Tensor denoised = ctx.call(x, sigmas[i]);
    at::Tensor d = to_d(x, sigmas[i], denoised);
    ds.push_back(d);
    if (static_cast<int64_t>(ds.size()) > order) ds.pop_front();
    ctx.report(i, x, denoised, sigmas[i], sigmas[i]);
    if (f(sigmas[i + 1]) == 0) {
      x = denoised;
    } else {
      int64_t cur_order = std::min(i + 1, order);
      // sum(coeff * d for coeff, d in zip(coeffs, reversed(ds))): Python's sum starts at 0.
      at::Tensor acc;
      for (int64_t j = 0; j < cur_order; ++j) {
        double coeff = linear_multistep_coeff(cur_order, t, i, j);
        at::Tensor term = ds[ds.size() - 1 - static_cast<size_t>(j)] * coeff;
        acc = acc.defined() ? acc + term : term + 0;
      }
      x = x + acc;
    }
  }
  return x;
}

at::Tensor sample_dpmpp_2s_ancestral(Ctx& ctx, at::Tensor x, at::Tensor sigmas) {
  double eta = ctx.opt("eta", 1.0), s_noise = ctx.opt("s_noise", 1.0);
  NoiseSampler noise_sampler = default_noise_sampler(x, ctx.seed);
  auto sigma_fn = [](const at::Tensor& t) { return t.neg().exp(); };
  auto t_fn = [](const at::Tensor& s) { return s.log().neg(); };
  for (int64_t i = 0; i < sigmas.size(0) - 1; ++i) {
    at::Tensor denoised = ctx.call(x, sigmas[i]);
    auto [sigma_down, sigma_up] = get_ancestral_step(sigmas[i], sigmas[i + 1], eta);
    ctx.report(i, x, denoised, sigmas[i], sigmas[i]);
    if (f(sigma_down) == 0) {
      at::Tensor d = to_d(x, sigmas[i], denoised);
      at::Tensor dt = sigma_down - sigmas[i];
      x = x + d * dt;
    } else {
      at::Tensor t = t_fn(sigmas[i]), t_next = t_fn(sigma_down);
      double r = 1.0 / 2;
      at::Tensor h = t_next - t;
      at::Tensor s = t + h * r;
      at::Tensor x_2 = (sigma_fn(s) / sigma_fn(t)) * x - (h.neg() * r).expm1() * denoised;
      at::Tensor denoised_2 = ctx.call(x_2, sigma_fn(s));
      x = (sigma_fn(t_next) / sigma_fn(t)) * x - h.neg().expm1() * denoised_2;
    }
    if (f(sigmas[i + 1]) > 0) x = x + noise_sampler(sigmas[i], sigmas[i + 1]) * s_noise * sigma_up;
  }
  return x;
}

at::Tensor sample_dpmpp_2m(Ctx& ctx, at::Tensor x, at::Tensor sigmas) {
  auto sigma_fn = [](const at::Tensor& t) { return t.neg().exp(); };
  auto t_fn = [](const at::Tensor& s) { return s.log().neg(); };
  at::Tensor old_denoised;
  for (int64_t i = 0; i < sigmas.size(0) - 1; ++i) {
    at::Tensor denoised = ctx.call(x, sigmas[i]);
    ctx.report(i, x, denoised, sigmas[i], sigmas[i]);
    at::Tensor t = t_fn(sigmas[i]), t_next = t_fn(sigmas[i + 1]);
    at::Tensor h = t_next - t;
    if (!old_denoised.defined() || f(sigmas[i + 1]) == 0) {
      x = (sigma_fn(t_next) / sigma_fn(t)) * x - h.neg().expm1() * denoised;
    } else {
      at::Tensor h_last = t - t_fn(sigmas[i - 1]);
      at::Tensor r = h_last / h;
      at::Tensor denoised_d = (rdiv(1, r * 2) + 1) * denoised - rdiv(1, r * 2) * old_denoised;
      x = (sigma_fn(t_next) / sigma_fn(t)) * x - h.neg().expm1() * denoised_d;
    }
    old_denoised = denoised;
  }
  return x;
}

// DDPMSampler_step on the variance-preserving x.
at::Tensor ddpm_step(const at::Tensor& x, const at::Tensor& sigma, const at::Tensor& sigma_prev,
                     const at::Tensor& noise, const NoiseSampler& noise_sampler) {
  at::Tensor alpha_cumprod = rdiv(1, sigma * sigma + 1);
  at::Tensor alpha_cumprod_prev = rdiv(1, sigma_prev * sigma_prev + 1);
  at::Tensor alpha = alpha_cumprod / alpha_cumprod_prev;
  at::Tensor mu = rdiv(1.0, alpha).sqrt() * (x - (1 - alpha) * noise / (1 - alpha_cumprod).sqrt());
  if (f(sigma_prev) > 0)
    mu += ((1 - alpha) * (1. - alpha_cumprod_prev) / (1. - alpha_cumprod)).sqrt() * noise_sampler(sigma, sigma_prev);
  return mu;
}

at::Tensor sample_ddpm(Ctx& ctx, at::Tensor x, at::Tensor sigmas) {
  NoiseSampler noise_sampler = default_noise_sampler(x, ctx.seed);
  for (int64_t i = 0; i < sigmas.size(0) - 1; ++i) {
    at::Tensor denoised = ctx.call(x, sigmas[i]);
    ctx.report(i, x, denoised, sigmas[i], sigmas[i]);
    x = ddpm_step(x / at::sqrt(sigmas[i].pow(2.0) + 1.0), sigmas[i], sigmas[i + 1], (x - denoised) / sigmas[i],
                  noise_sampler);
    if (f(sigmas[i + 1]) != 0) x *= at::sqrt(sigmas[i + 1].pow(2.0) + 1.0);
  }
  return x;
}

at::Tensor sample_lcm(Ctx& ctx, at::Tensor x, at::Tensor sigmas) {
  NoiseSampler noise_sampler = default_noise_sampler(x, ctx.seed);
  for (int64_t i = 0; i < sigmas.size(0) - 1; ++i) {
    at::Tensor denoised = ctx.call(x, sigmas[i]);
    ctx.report(i, x, denoised, sigmas[i], sigmas[i]);
    x = denoised;
    if (f(sigmas[i + 1]) > 0)
      x = ctx.sampling->noise_scaling(sigmas[i + 1], noise_sampler(sigmas[i], sigmas[i + 1]), x, false);
  }
  return x;
}

}  // namespace

SampleFn find_k_diffusion(const std::string& name) {
  if (name == "euler") return sample_euler;
  if (name == "euler_ancestral") return sample_euler_ancestral;
  if (name == "heun") return sample_heun;
  if (name == "heunpp2") return sample_heunpp2;
  if (name == "dpm_2") return sample_dpm_2;
  if (name == "dpm_2_ancestral") return sample_dpm_2_ancestral;
  if (name == "lms") return sample_lms;
  if (name == "dpmpp_2s_ancestral") return sample_dpmpp_2s_ancestral;
  if (name == "dpmpp_2m") return sample_dpmpp_2m;
  if (name == "ddpm") return sample_ddpm;
  if (name == "lcm") return sample_lcm;
  return nullptr;
}

}  // namespace comfy::ksampling
