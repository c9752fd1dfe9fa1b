// The samplers that read the unconditional prediction (CFG++ and friends) and the
// res_multistep / gradient_estimation families (comfy/k_diffusion/sampling.py), EPS/V paths.
#include <cmath>

#include "sampling/k_common.h"

namespace comfy::ksampling {
namespace {

// sigma_to_half_log_snr for non-CONST sampling: -log(sigma).
at::Tensor lambda_fn(const at::Tensor& sigma) { return sigma.log().neg(); }

at::Tensor euler_ancestral_cfg_pp(Ctx& ctx, at::Tensor x, const at::Tensor& sigmas, double eta, double s_noise) {
  NoiseSampler noise_sampler = default_noise_sampler(x, ctx.seed);
  UncondCapture uncond(ctx.denoiser);
  for (int64_t i = 0; i < sigmas.size(0) - 1; ++i) {
    at::Tensor denoised = ctx.call(x, sigmas[i]);
    at::Tensor uncond_denoised = uncond.get();
    ctx.report(i, x, denoised, sigmas[i], sigmas[i]);
    if (f(sigmas[i + 1]) == 0) {
      x = denoised;
    } else {
      at::Tensor alpha_s = sigmas[i] * lambda_fn(sigmas[i]).exp();
      at::Tensor alpha_t = sigmas[i + 1] * lambda_fn(sigmas[i + 1]).exp();
      at::Tensor d = to_d(x, sigmas[i], alpha_s * uncond_denoised);
      auto [sigma_down, sigma_up] = get_ancestral_step(sigmas[i] / alpha_s, sigmas[i + 1] / alpha_t, eta);
      sigma_down = alpha_t * sigma_down;
      x = alpha_t * denoised + sigma_down * d;
      if (eta > 0 && s_noise > 0) x = x + alpha_t * noise_sampler(sigmas[i], sigmas[i + 1]) * s_noise * sigma_up;
    }
  }
  return x;
}

at::Tensor sample_euler_ancestral_cfg_pp(Ctx& ctx, at::Tensor x, at::Tensor sigmas) {
  return euler_ancestral_cfg_pp(ctx, x, sigmas, ctx.opt("eta", 1.0), ctx.opt("s_noise", 1.0));
}

at::Tensor sample_euler_cfg_pp(Ctx& ctx, at::Tensor x, at::Tensor sigmas) {
  return euler_ancestral_cfg_pp(ctx, x, sigmas, 0.0, 0.0);
}

at::Tensor sample_dpmpp_2s_ancestral_cfg_pp(Ctx& ctx, at::Tensor x, at::Tensor sigmas) {
  double eta = ctx.opt("eta", 1.0), s_noise = ctx.opt("s_noise", 1.0);
  NoiseSampler noise_sampler = default_noise_sampler(x, ctx.seed);
  UncondCapture uncond(ctx.denoiser);
  auto sigma_fn = [](const at::Tensor& t) { return t.neg().exp(); };
  auto t_fn = [](const at::Tensor& s) { return s.log().neg(); };
  for (int64_t i = 0; i < sigmas.size(0) - 1; ++i) {
    at::Tensor denoised = ctx.call(x, sigmas[i]);
    at::Tensor temp = uncond.get();
    auto [sigma_down, sigma_up] = get_ancestral_step(sigmas[i], sigmas[i + 1], eta);
    ctx.report(i, x, denoised, sigmas[i], sigmas[i]);
    if (f(sigma_down) == 0) {
      at::Tensor d = to_d(x, sigmas[i], temp);
      x = denoised + d * sigma_down;
    } else {
      at::Tensor t = t_fn(sigmas[i]), t_next = t_fn(sigma_down);
      double r = 1.0 / 2;
      at::Tensor h = t_next - t;
      at::Tensor s = t + h * r;
      at::Tensor x_2 = (sigma_fn(s) / sigma_fn(t)) * (x + (denoised - temp)) - (h.neg() * r).expm1() * denoised;
      at::Tensor denoised_2 = ctx.call(x_2, sigma_fn(s));
      // ComfyUI's post-CFG hook has replaced temp[0] by the second call's uncond by now.
      temp = uncond.get();
      x = (sigma_fn(t_next) / sigma_fn(t)) * (x + (denoised - temp)) - h.neg().expm1() * denoised_2;
    }
    if (f(sigmas[i + 1]) > 0) x = x + noise_sampler(sigmas[i], sigmas[i + 1]) * s_noise * sigma_up;
  }
  return x;
}

at::Tensor sample_dpmpp_2m_cfg_pp(Ctx& ctx, at::Tensor x, at::Tensor sigmas) {
  UncondCapture uncond(ctx.denoiser);
  auto t_fn = [](const at::Tensor& s) { return s.log().neg(); };
  at::Tensor old_uncond_denoised;
  for (int64_t i = 0; i < sigmas.size(0) - 1; ++i) {
    at::Tensor denoised = ctx.call(x, sigmas[i]);
    at::Tensor uncond_denoised = uncond.get();
    ctx.report(i, x, denoised, sigmas[i], sigmas[i]);
    at::Tensor t = t_fn(sigmas[i]), t_next = t_fn(sigmas[i + 1]);
    at::Tensor h = t_next - t;
    at::Tensor denoised_mix;
    if (!old_uncond_denoised.defined() || f(sigmas[i + 1]) == 0) {
      denoised_mix = -at::exp(-h) * uncond_denoised;
    } else {
      at::Tensor h_last = t - t_fn(sigmas[i - 1]);
      at::Tensor r = h_last / h;
      denoised_mix = -at::exp(-h) * uncond_denoised - at::expm1(-h) * rdiv(1, r * 2) * (denoised - old_uncond_denoised);
    }
    x = denoised + denoised_mix + at::exp(-h) * x;
    old_uncond_denoised = uncond_denoised;
  }
  return x;
}

at::Tensor res_multistep(Ctx& ctx, at::Tensor x, const at::Tensor& sigmas, double s_noise, double eta, bool cfg_pp) {
  NoiseSampler noise_sampler = default_noise_sampler(x, ctx.seed);
  auto sigma_fn = [](const at::Tensor& t) { return t.neg().exp(); };
  auto t_fn = [](const at::Tensor& s) { return s.log().neg(); };
  auto phi1_fn = [](const at::Tensor& t) { return at::expm1(t) / t; };
  auto phi2_fn = [&](const at::Tensor& t) { return (phi1_fn(t) - 1.0) / t; };
  std::optional<UncondCapture> uncond;
  if (cfg_pp) uncond.emplace(ctx.denoiser);
  at::Tensor old_sigma_down, old_denoised;
  for (int64_t i = 0; i < sigmas.size(0) - 1; ++i) {
    at::Tensor denoised = ctx.call(x, sigmas[i]);
    at::Tensor uncond_denoised = cfg_pp ? uncond->get() : at::Tensor();
    auto [sigma_down, sigma_up] = get_ancestral_step(sigmas[i], sigmas[i + 1], eta);
    ctx.report(i, x, denoised, sigmas[i], sigmas[i]);
    if (f(sigma_down) == 0 || !old_denoised.defined()) {
      if (cfg_pp) {
        at::Tensor d = to_d(x, sigmas[i], uncond_denoised);
        x = denoised + d * sigma_down;
      } else {
        at::Tensor d = to_d(x, sigmas[i], denoised);
        at::Tensor dt = sigma_down - sigmas[i];
        x = x + d * dt;
      }
    } else {
      at::Tensor t = t_fn(sigmas[i]), t_old = t_fn(old_sigma_down), t_next = t_fn(sigma_down),
                 t_prev = t_fn(sigmas[i - 1]);
      at::Tensor h = t_next - t;
      at::Tensor c2 = (t_prev - t_old) / h;
      at::Tensor phi1_val = phi1_fn(-h), phi2_val = phi2_fn(-h);
      at::Tensor b1 = at::nan_to_num(phi1_val - phi2_val / c2, 0.0);
      at::Tensor b2 = at::nan_to_num(phi2_val / c2, 0.0);
      if (cfg_pp) {
        x = x + (denoised - uncond_denoised);
        x = sigma_fn(h) * x + h * (b1 * uncond_denoised + b2 * old_denoised);
      } else {
        x = sigma_fn(h) * x + h * (b1 * denoised + b2 * old_denoised);
      }
    }
    if (f(sigmas[i + 1]) > 0) x = x + noise_sampler(sigmas[i], sigmas[i + 1]) * s_noise * sigma_up;
    old_denoised = cfg_pp ? uncond_denoised : denoised;
    old_sigma_down = sigma_down;
  }
  return x;
}

at::Tensor sample_res_multistep(Ctx& ctx, at::Tensor x, at::Tensor sigmas) {
  return res_multistep(ctx, x, sigmas, ctx.opt("s_noise", 1.0), 0.0, false);
}
at::Tensor sample_res_multistep_cfg_pp(Ctx& ctx, at::Tensor x, at::Tensor sigmas) {
  return res_multistep(ctx, x, sigmas, ctx.opt("s_noise", 1.0), 0.0, true);
}
at::Tensor sample_res_multistep_ancestral(Ctx& ctx, at::Tensor x, at::Tensor sigmas) {
  return res_multistep(ctx, x, sigmas, ctx.opt("s_noise", 1.0), ctx.opt("eta", 1.0), false);
}
at::Tensor sample_res_multistep_ancestral_cfg_pp(Ctx& ctx, at::Tensor x, at::Tensor sigmas) {
  return res_multistep(ctx, x, sigmas, ctx.opt("s_noise", 1.0), ctx.opt("eta", 1.0), true);
}

at::Tensor gradient_estimation(Ctx& ctx, at::Tensor x, const at::Tensor& sigmas, bool cfg_pp) {
  double ge_gamma = ctx.opt("ge_gamma", 2.0);
  std::optional<UncondCapture> uncond;
  if (cfg_pp) uncond.emplace(ctx.denoiser);
  at::Tensor old_d;
  for (int64_t i = 0; i < sigmas.size(0) - 1; ++i) {
    at::Tensor denoised = ctx.call(x, sigmas[i]);
    at::Tensor d = cfg_pp ? to_d(x, sigmas[i], uncond->get()) : to_d(x, sigmas[i], denoised);
    ctx.report(i, x, denoised, sigmas[i], sigmas[i]);
    at::Tensor dt = sigmas[i + 1] - sigmas[i];
    if (f(sigmas[i + 1]) == 0) {
      x = denoised;
    } else {
      if (cfg_pp) x = denoised + d * sigmas[i + 1];
      else x = x + d * dt;
      if (i >= 1) {
        at::Tensor d_bar = (ge_gamma - 1) * (d - old_d);
        x = x + d_bar * dt;
      }
    }
    old_d = d;
  }
  return x;
}

at::Tensor sample_gradient_estimation(Ctx& ctx, at::Tensor x, at::Tensor sigmas) {
  return gradient_estimation(ctx, x, sigmas, false);
}
at::Tensor sample_gradient_estimation_cfg_pp(Ctx& ctx, at::Tensor x, at::Tensor sigmas) {
  return gradient_estimation(ctx, x, sigmas, true);
}

}  // namespace

SampleFn find_cfg_pp(const std::string& name) {
  if (name == "euler_cfg_pp") return sample_euler_cfg_pp;
  if (name == "euler_ancestral_cfg_pp") return sample_euler_ancestral_cfg_pp;
  if (name == "dpmpp_2s_ancestral_cfg_pp") return sample_dpmpp_2s_ancestral_cfg_pp;
  if (name == "dpmpp_2m_cfg_pp") return sample_dpmpp_2m_cfg_pp;
  if (name == "res_multistep") return sample_res_multistep;
  if (name == "res_multistep_cfg_pp") return sample_res_multistep_cfg_pp;
  if (name == "res_multistep_ancestral") return sample_res_multistep_ancestral;
  if (name == "res_multistep_ancestral_cfg_pp") return sample_res_multistep_ancestral_cfg_pp;
  if (name == "gradient_estimation") return sample_gradient_estimation;
  if (name == "gradient_estimation_cfg_pp") return sample_gradient_estimation_cfg_pp;
  return nullptr;
}

}  // namespace comfy::ksampling
