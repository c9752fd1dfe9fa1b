// The SDE samplers of comfy/k_diffusion/sampling.py (EPS/V paths): dpmpp_sde, dpmpp_2m_sde
// (midpoint/heun), dpmpp_3m_sde with their Brownian-tree noise (the *_gpu variants are the same
// numbers on the CPU), seeds_2/seeds_3/exp_heun_2_x0(_sde) and er_sde with ancestral noise.
#include <cmath>

#include "core/error.h"
#include "sampling/k_common.h"

namespace comfy::ksampling {
namespace {

// Non-CONST sampling: lambda = -log(sigma) and back.
at::Tensor lambda_fn(const at::Tensor& sigma) { return sigma.log().neg(); }
at::Tensor sigma_fn(const at::Tensor& lambda) { return lambda.neg().exp(); }
at::Tensor ei_h_phi_1(const at::Tensor& h) { return at::expm1(h); }
at::Tensor ei_h_phi_2(const at::Tensor& h) { return (at::expm1(h) - h) / h; }

NoiseSampler tree_sampler(Ctx& ctx, const at::Tensor& x, const at::Tensor& sigmas) {
  auto [sigma_min, sigma_max] = positive_sigma_range(sigmas);
  return brownian_tree_noise_sampler(x, sigma_min, sigma_max, ctx.seed);
}

at::Tensor sample_dpmpp_sde(Ctx& ctx, at::Tensor x, at::Tensor sigmas) {
  if (sigmas.size(0) <= 1) return x;
  double eta = ctx.opt("eta", 1.0), s_noise = ctx.opt("s_noise", 1.0), r = ctx.opt("r", 0.5);
  NoiseSampler noise_sampler = tree_sampler(ctx, x, sigmas);
  for (int64_t i = 0; i < sigmas.size(0) - 1; ++i) {
    at::Tensor denoised = ctx.call(x, sigmas[i]);
    ctx.report(i, x, denoised, sigmas[i], sigmas[i]);
    if (f(sigmas[i + 1]) == 0) {
      x = denoised;
      continue;
    }
    at::Tensor lambda_s = lambda_fn(sigmas[i]), lambda_t = lambda_fn(sigmas[i + 1]);
    at::Tensor h = lambda_t - lambda_s;
    at::Tensor lambda_s_1 = lambda_s + h * r;
    double fac = 1 / (2 * r);
    at::Tensor sigma_s_1 = sigma_fn(lambda_s_1);
    at::Tensor alpha_s = sigmas[i] * lambda_s.exp();
    at::Tensor alpha_s_1 = sigma_s_1 * lambda_s_1.exp();
    at::Tensor alpha_t = sigmas[i + 1] * lambda_t.exp();
    // Step 1
    auto [sd, su] = get_ancestral_step(lambda_s.neg().exp(), lambda_s_1.neg().exp(), eta);
    at::Tensor lambda_s_1_ = sd.log().neg();
    at::Tensor h_ = lambda_s_1_ - lambda_s;
    at::Tensor x_2 = (alpha_s_1 / alpha_s) * (-h_).exp() * x - alpha_s_1 * (-h_).expm1() * denoised;
    if (eta > 0 && s_noise > 0) x_2 = x_2 + alpha_s_1 * noise_sampler(sigmas[i], sigma_s_1) * s_noise * su;
    at::Tensor denoised_2 = ctx.call(x_2, sigma_s_1);
    // Step 2
    auto [sd2, su2] = get_ancestral_step(lambda_s.neg().exp(), lambda_t.neg().exp(), eta);
    at::Tensor lambda_t_ = sd2.log().neg();
    h_ = lambda_t_ - lambda_s;
    at::Tensor denoised_d = (1 - fac) * denoised + fac * denoised_2;
    x = (alpha_t / alpha_s) * (-h_).exp() * x - alpha_t * (-h_).expm1() * denoised_d;
    if (eta > 0 && s_noise > 0) x = x + alpha_t * noise_sampler(sigmas[i], sigmas[i + 1]) * s_noise * su2;
  }
  return x;
}

at::Tensor dpmpp_2m_sde(Ctx& ctx, at::Tensor x, const at::Tensor& sigmas, const std::string& solver_type) {
  if (sigmas.size(0) <= 1) return x;
  if (solver_type != "heun" && solver_type != "midpoint")
    throw ComfyError("ValueError", "solver_type must be 'heun' or 'midpoint'");
  double eta = ctx.opt("eta", 1.0), s_noise = ctx.opt("s_noise", 1.0);
  NoiseSampler noise_sampler = tree_sampler(ctx, x, sigmas);
  at::Tensor old_denoised, h, h_last;
  for (int64_t i = 0; i < sigmas.size(0) - 1; ++i) {
    at::Tensor denoised = ctx.call(x, sigmas[i]);
    ctx.report(i, x, denoised, sigmas[i], sigmas[i]);
    if (f(sigmas[i + 1]) == 0) {
      x = denoised;
    } else {
      at::Tensor lambda_s = lambda_fn(sigmas[i]), lambda_t = lambda_fn(sigmas[i + 1]);
      h = lambda_t - lambda_s;
      at::Tensor h_eta = h * (eta + 1);
      at::Tensor alpha_t = sigmas[i + 1] * lambda_t.exp();
      x = sigmas[i + 1] / sigmas[i] * (-h * eta).exp() * x + alpha_t * (-h_eta).expm1().neg() * denoised;
      if (old_denoised.defined()) {
        at::Tensor r = h_last / h;
        if (solver_type == "heun")
          x = x + alpha_t * ((-h_eta).expm1().neg() / (-h_eta) + 1) * rdiv(1, r) * (denoised - old_denoised);
        else
          x = x + alpha_t * 0.5 * (-h_eta).expm1().neg() * rdiv(1, r) * (denoised - old_denoised);
      }
      if (eta > 0 && s_noise > 0)
        x = x + noise_sampler(sigmas[i], sigmas[i + 1]) * sigmas[i + 1] * (h * -2 * eta).expm1().neg().sqrt() * s_noise;
    }
    old_denoised = denoised;
    h_last = h;
  }
  return x;
}

at::Tensor sample_dpmpp_2m_sde(Ctx& ctx, at::Tensor x, at::Tensor sigmas) {
  return dpmpp_2m_sde(ctx, x, sigmas, ctx.text("solver_type", "midpoint"));
}
at::Tensor sample_dpmpp_2m_sde_heun(Ctx& ctx, at::Tensor x, at::Tensor sigmas) {
  return dpmpp_2m_sde(ctx, x, sigmas, ctx.text("solver_type", "heun"));
}

at::Tensor sample_dpmpp_3m_sde(Ctx& ctx, at::Tensor x, at::Tensor sigmas) {
  if (sigmas.size(0) <= 1) return x;
  double eta = ctx.opt("eta", 1.0), s_noise = ctx.opt("s_noise", 1.0);
  NoiseSampler noise_sampler = tree_sampler(ctx, x, sigmas);
  at::Tensor denoised_1, denoised_2, h, h_1, h_2;
  for (int64_t i = 0; i < sigmas.size(0) - 1; ++i) {
    at::Tensor denoised = ctx.call(x, sigmas[i]);
    ctx.report(i, x, denoised, sigmas[i], sigmas[i]);
    if (f(sigmas[i + 1]) == 0) {
      x = denoised;
    } else {
      at::Tensor lambda_s = lambda_fn(sigmas[i]), lambda_t = lambda_fn(sigmas[i + 1]);
      h = lambda_t - lambda_s;
      at::Tensor h_eta = h * (eta + 1);
      at::Tensor alpha_t = sigmas[i + 1] * lambda_t.exp();
      x = sigmas[i + 1] / sigmas[i] * (-h * eta).exp() * x + alpha_t * (-h_eta).expm1().neg() * denoised;
      if (h_2.defined()) {
        at::Tensor r0 = h_1 / h, r1 = h_2 / h;
        at::Tensor d1_0 = (denoised - denoised_1) / r0;
        at::Tensor d1_1 = (denoised_1 - denoised_2) / r1;
        at::Tensor d1 = d1_0 + (d1_0 - d1_1) * r0 / (r0 + r1);
        at::Tensor d2 = (d1_0 - d1_1) / (r0 + r1);
        at::Tensor phi_2 = h_eta.neg().expm1() / h_eta + 1;
        at::Tensor phi_3 = phi_2 / h_eta - 0.5;
        x = x + (alpha_t * phi_2) * d1 - (alpha_t * phi_3) * d2;
      } else if (h_1.defined()) {
        at::Tensor r = h_1 / h;
        at::Tensor d = (denoised - denoised_1) / r;
        at::Tensor phi_2 = h_eta.neg().expm1() / h_eta + 1;
        x = x + (alpha_t * phi_2) * d;
      }
      if (eta > 0 && s_noise > 0)
        x = x + noise_sampler(sigmas[i], sigmas[i + 1]) * sigmas[i + 1] * (h * -2 * eta).expm1().neg().sqrt() * s_noise;
    }
    denoised_2 = denoised_1;
    denoised_1 = denoised;
    h_2 = h_1;
    h_1 = h;
  }
  return x;
}

at::Tensor seeds_2(Ctx& ctx, at::Tensor x, const at::Tensor& sigmas, double eta, double s_noise, double r,
                   const std::string& solver_type) {
  if (solver_type != "phi_1" && solver_type != "phi_2")
    throw ComfyError("ValueError", "solver_type must be 'phi_1' or 'phi_2'");
  NoiseSampler noise_sampler = default_noise_sampler(x, ctx.seed);
  bool inject_noise = eta > 0 && s_noise > 0;
  double fac = 1 / (2 * r);
  for (int64_t i = 0; i < sigmas.size(0) - 1; ++i) {
    at::Tensor denoised = ctx.call(x, sigmas[i]);
    ctx.report(i, x, denoised, sigmas[i], sigmas[i]);
    if (f(sigmas[i + 1]) == 0) {
      x = denoised;
      continue;
    }
    at::Tensor lambda_s = lambda_fn(sigmas[i]), lambda_t = lambda_fn(sigmas[i + 1]);
    at::Tensor h = lambda_t - lambda_s;
    at::Tensor h_eta = h * (eta + 1);
    at::Tensor lambda_s_1 = at::lerp(lambda_s, lambda_t, r);
    at::Tensor sigma_s_1 = sigma_fn(lambda_s_1);
    at::Tensor alpha_s_1 = sigma_s_1 * lambda_s_1.exp();
    at::Tensor alpha_t = sigmas[i + 1] * lambda_t.exp();
    at::Tensor x_2 = sigma_s_1 / sigmas[i] * (h * -r * eta).exp() * x - alpha_s_1 * ei_h_phi_1(h_eta * -r) * denoised;
    at::Tensor sde_noise;
    if (inject_noise) {
      sde_noise = (h * (-2 * r) * eta).expm1().neg().sqrt() * noise_sampler(sigmas[i], sigma_s_1);
      x_2 = x_2 + sde_noise * sigma_s_1 * s_noise;
    }
    at::Tensor denoised_2 = ctx.call(x_2, sigma_s_1);
    if (solver_type == "phi_1") {
      at::Tensor denoised_d = at::lerp(denoised, denoised_2, fac);
      x = sigmas[i + 1] / sigmas[i] * (-h * eta).exp() * x - alpha_t * ei_h_phi_1(-h_eta) * denoised_d;
    } else {
      at::Tensor b2 = ei_h_phi_2(-h_eta) / r;
      at::Tensor b1 = ei_h_phi_1(-h_eta) - b2;
      x = sigmas[i + 1] / sigmas[i] * (-h * eta).exp() * x - alpha_t * (b1 * denoised + b2 * denoised_2);
    }
    if (inject_noise) {
      at::Tensor segment_factor = h * (r - 1) * eta;
      sde_noise = sde_noise * segment_factor.exp();
      sde_noise = sde_noise + segment_factor.mul(2).expm1().neg().sqrt() * noise_sampler(sigma_s_1, sigmas[i + 1]);
      x = x + sde_noise * sigmas[i + 1] * s_noise;
    }
  }
  return x;
}

at::Tensor sample_seeds_2(Ctx& ctx, at::Tensor x, at::Tensor sigmas) {
  return seeds_2(ctx, x, sigmas, ctx.opt("eta", 1.0), ctx.opt("s_noise", 1.0), ctx.opt("r", 0.5),
                 ctx.text("solver_type", "phi_1"));
}
at::Tensor sample_exp_heun_2_x0(Ctx& ctx, at::Tensor x, at::Tensor sigmas) {
  return seeds_2(ctx, x, sigmas, 0.0, 0.0, 1.0, ctx.text("solver_type", "phi_2"));
}
at::Tensor sample_exp_heun_2_x0_sde(Ctx& ctx, at::Tensor x, at::Tensor sigmas) {
  return seeds_2(ctx, x, sigmas, ctx.opt("eta", 1.0), ctx.opt("s_noise", 1.0), 1.0, ctx.text("solver_type", "phi_2"));
}

at::Tensor sample_seeds_3(Ctx& ctx, at::Tensor x, at::Tensor sigmas) {
  double eta = ctx.opt("eta", 1.0), s_noise = ctx.opt("s_noise", 1.0);
  double r_1 = ctx.opt("r_1", 1.0 / 3), r_2 = ctx.opt("r_2", 2.0 / 3);
  NoiseSampler noise_sampler = default_noise_sampler(x, ctx.seed);
  bool inject_noise = eta > 0 && s_noise > 0;
  for (int64_t i = 0; i < sigmas.size(0) - 1; ++i) {
    at::Tensor denoised = ctx.call(x, sigmas[i]);
    ctx.report(i, x, denoised, sigmas[i], sigmas[i]);
    if (f(sigmas[i + 1]) == 0) {
      x = denoised;
      continue;
    }
    at::Tensor lambda_s = lambda_fn(sigmas[i]), lambda_t = lambda_fn(sigmas[i + 1]);
    at::Tensor h = lambda_t - lambda_s;
    at::Tensor h_eta = h * (eta + 1);
    at::Tensor lambda_s_1 = at::lerp(lambda_s, lambda_t, r_1);
    at::Tensor lambda_s_2 = at::lerp(lambda_s, lambda_t, r_2);
    at::Tensor sigma_s_1 = sigma_fn(lambda_s_1), sigma_s_2 = sigma_fn(lambda_s_2);
    at::Tensor alpha_s_1 = sigma_s_1 * lambda_s_1.exp();
    at::Tensor alpha_s_2 = sigma_s_2 * lambda_s_2.exp();
    at::Tensor alpha_t = sigmas[i + 1] * lambda_t.exp();
    at::Tensor x_2 = sigma_s_1 / sigmas[i] * (h * -r_1 * eta).exp() * x - alpha_s_1 * ei_h_phi_1(h_eta * -r_1) * denoised;
    at::Tensor sde_noise;
    if (inject_noise) {
      sde_noise = (h * (-2 * r_1) * eta).expm1().neg().sqrt() * noise_sampler(sigmas[i], sigma_s_1);
      x_2 = x_2 + sde_noise * sigma_s_1 * s_noise;
    }
    at::Tensor denoised_2 = ctx.call(x_2, sigma_s_1);
    at::Tensor a3_2 = ei_h_phi_2(h_eta * -r_2) * (r_2 / r_1);
    at::Tensor a3_1 = ei_h_phi_1(h_eta * -r_2) - a3_2;
    at::Tensor x_3 = sigma_s_2 / sigmas[i] * (h * -r_2 * eta).exp() * x - alpha_s_2 * (a3_1 * denoised + a3_2 * denoised_2);
    if (inject_noise) {
      at::Tensor segment_factor = h * (r_1 - r_2) * eta;
      sde_noise = sde_noise * segment_factor.exp();
      sde_noise = sde_noise + segment_factor.mul(2).expm1().neg().sqrt() * noise_sampler(sigma_s_1, sigma_s_2);
      x_3 = x_3 + sde_noise * sigma_s_2 * s_noise;
    }
    at::Tensor denoised_3 = ctx.call(x_3, sigma_s_2);
    at::Tensor b3 = ei_h_phi_2(-h_eta) / r_2;
    at::Tensor b1 = ei_h_phi_1(-h_eta) - b3;
    x = sigmas[i + 1] / sigmas[i] * (-h * eta).exp() * x - alpha_t * (b1 * denoised + b3 * denoised_3);
    if (inject_noise) {
      at::Tensor segment_factor = h * (r_2 - 1) * eta;
      sde_noise = sde_noise * segment_factor.exp();
      sde_noise = sde_noise + segment_factor.mul(2).expm1().neg().sqrt() * noise_sampler(sigma_s_2, sigmas[i + 1]);
      x = x + sde_noise * sigmas[i + 1] * s_noise;
    }
  }
  return x;
}

at::Tensor sample_er_sde(Ctx& ctx, at::Tensor x, at::Tensor sigmas) {
  double s_noise = ctx.opt("s_noise", 1.0);
  int64_t max_stage = static_cast<int64_t>(ctx.opt("max_stage", 3));
  // SamplerER_SDE's "Reverse-time SDE"/"ODE" pass x ** (eta + 1) as noise_scaler: option
  // "noise_scaler_eta" selects it; without it the ER-SDE default x * (exp(x ** 0.3) + 10).
  auto it = ctx.options->find("noise_scaler_eta");
  bool reverse_time = it != ctx.options->end();
  double rt_eta = reverse_time ? it->second : 0.0;
  auto noise_scaler = [reverse_time, rt_eta](const at::Tensor& v) {
    if (reverse_time) return v.pow(rt_eta + 1);
    return v * ((v.pow(0.3)).exp() + 10.0);
  };
  NoiseSampler noise_sampler = default_noise_sampler(x, ctx.seed);
  const double num_integration_points = 200.0;
  at::Tensor point_indice = at::arange(0, num_integration_points, at::TensorOptions().dtype(at::kFloat));
  at::Tensor er_lambdas = lambda_fn(sigmas).neg().exp();
  at::Tensor old_denoised, old_denoised_d;
  for (int64_t i = 0; i < sigmas.size(0) - 1; ++i) {
    at::Tensor denoised = ctx.call(x, sigmas[i]);
    ctx.report(i, x, denoised, sigmas[i], sigmas[i]);
    int64_t stage_used = std::min(max_stage, i + 1);
    if (f(sigmas[i + 1]) == 0) {
      x = denoised;
    } else {
      at::Tensor er_lambda_s = er_lambdas[i], er_lambda_t = er_lambdas[i + 1];
      at::Tensor alpha_s = sigmas[i] / er_lambda_s;
      at::Tensor alpha_t = sigmas[i + 1] / er_lambda_t;
      at::Tensor r_alpha = alpha_t / alpha_s;
      at::Tensor r = noise_scaler(er_lambda_t) / noise_scaler(er_lambda_s);
      x = r_alpha * r * x + alpha_t * (1 - r) * denoised;
      if (stage_used >= 2) {
        at::Tensor dt = er_lambda_t - er_lambda_s;
        at::Tensor lambda_step_size = -dt / num_integration_points;
        at::Tensor lambda_pos = er_lambda_t + point_indice * lambda_step_size;
        at::Tensor scaled_pos = noise_scaler(lambda_pos);
        at::Tensor s = at::sum(rdiv(1, scaled_pos)) * lambda_step_size;
        at::Tensor denoised_d = (denoised - old_denoised) / (er_lambda_s - er_lambdas[i - 1]);
        x = x + alpha_t * (dt + s * noise_scaler(er_lambda_t)) * denoised_d;
        if (stage_used >= 3) {
          at::Tensor s_u = at::sum((lambda_pos - er_lambda_s) / scaled_pos) * lambda_step_size;
          at::Tensor denoised_u = (denoised_d - old_denoised_d) / ((er_lambda_s - er_lambdas[i - 2]) / 2);
          x = x + alpha_t * (dt.pow(2) / 2 + s_u * noise_scaler(er_lambda_t)) * denoised_u;
        }
        old_denoised_d = denoised_d;
      }
      if (s_noise > 0)
        x = x + alpha_t * noise_sampler(sigmas[i], sigmas[i + 1]) * s_noise *
                    at::nan_to_num((er_lambda_t.pow(2) - er_lambda_s.pow(2) * r.pow(2)).sqrt(), 0.0);
    }
    old_denoised = denoised;
  }
  return x;
}

}  // namespace

SampleFn find_sde(const std::string& name) {
  if (name == "dpmpp_sde" || name == "dpmpp_sde_gpu") return sample_dpmpp_sde;
  if (name == "dpmpp_2m_sde" || name == "dpmpp_2m_sde_gpu") return sample_dpmpp_2m_sde;
  if (name == "dpmpp_2m_sde_heun" || name == "dpmpp_2m_sde_heun_gpu") return sample_dpmpp_2m_sde_heun;
  if (name == "dpmpp_3m_sde" || name == "dpmpp_3m_sde_gpu") return sample_dpmpp_3m_sde;
  if (name == "seeds_2") return sample_seeds_2;
  if (name == "seeds_3") return sample_seeds_3;
  if (name == "exp_heun_2_x0") return sample_exp_heun_2_x0;
  if (name == "exp_heun_2_x0_sde") return sample_exp_heun_2_x0_sde;
  if (name == "er_sde") return sample_er_sde;
  return nullptr;
}

}  // namespace comfy::ksampling
