// UniPC (comfy/extra_samplers/uni_pc.py) as ComfyUI runs it: multistep, data prediction,
// variant bh1 ("uni_pc") or bh2 ("uni_pc_bh2"), time-uniform over the given sigmas, order
// min(3, steps - 1) with lower orders at the end, on the EPS view of the guided model.
#include <vector>

#include "sampling/k_common.h"

namespace comfy::ksampling {
namespace {

// SigmaConvert: the VP quantities of a sigma.
at::Tensor marginal_log_mean_coeff(const at::Tensor& sigma) { return at::log(rdiv(1, sigma * sigma + 1)) * 0.5; }
at::Tensor marginal_alpha(const at::Tensor& t) { return at::exp(marginal_log_mean_coeff(t)); }
at::Tensor marginal_std(const at::Tensor& t) { return at::sqrt(1. - at::exp(marginal_log_mean_coeff(t) * 2.)); }
at::Tensor marginal_lambda(const at::Tensor& t) {
  at::Tensor log_mean_coeff = marginal_log_mean_coeff(t);
  at::Tensor log_std = at::log(1. - at::exp(log_mean_coeff * 2.)) * 0.5;
  return log_mean_coeff - log_std;
}

at::Tensor expand_dims(const at::Tensor& v, int64_t dims) {
  std::vector<int64_t> shape(static_cast<size_t>(dims), 1);
  shape[0] = v.size(0);
  return v.reshape(shape);
}

class UniPC {
 public:
  UniPC(Ctx& ctx, bool bh2) : ctx_(ctx), bh2_(bh2) {}

  // model_wrapper(predict_eps_sigma) then data_prediction_fn.
  at::Tensor model_fn(const at::Tensor& x, const at::Tensor& t) {
    int64_t dims = x.dim();
    at::Tensor sigma = expand_dims(t, dims);
    at::Tensor input = x * (sigma.pow(2) + 1.0).pow(0.5);
    at::Tensor noise = (input - ctx_.model(input, t)) / sigma;
    at::Tensor alpha_t = marginal_alpha(t), sigma_t = marginal_std(t);
    return (x - expand_dims(sigma_t, dims) * noise) / expand_dims(alpha_t, dims);
  }

  std::pair<at::Tensor, at::Tensor> update(const at::Tensor& x, const std::vector<at::Tensor>& model_prev_list,
                                           const std::vector<at::Tensor>& t_prev_list, const at::Tensor& t,
                                           int64_t order, bool use_corrector) {
    int64_t dims = x.dim();
    const at::Tensor& t_prev_0 = t_prev_list.back();
    at::Tensor lambda_prev_0 = marginal_lambda(t_prev_0);
    at::Tensor lambda_t = marginal_lambda(t);
    const at::Tensor& model_prev_0 = model_prev_list.back();
    at::Tensor sigma_prev_0 = marginal_std(t_prev_0), sigma_t = marginal_std(t);
    at::Tensor log_alpha_t = marginal_log_mean_coeff(t);
    at::Tensor alpha_t = at::exp(log_alpha_t);
    at::Tensor h = lambda_t - lambda_prev_0;

    std::vector<float> rks;
    std::vector<at::Tensor> D1s;
    for (int64_t i = 1; i < order; ++i) {
      const at::Tensor& t_prev_i = t_prev_list[t_prev_list.size() - 1 - static_cast<size_t>(i)];
      const at::Tensor& model_prev_i = model_prev_list[model_prev_list.size() - 1 - static_cast<size_t>(i)];
      at::Tensor lambda_prev_i = marginal_lambda(t_prev_i);
      at::Tensor rk = ((lambda_prev_i - lambda_prev_0) / h)[0];
      rks.push_back(rk.item<float>());
      D1s.push_back((model_prev_i - model_prev_0) / rk);
    }
    rks.push_back(1.0f);
    at::Tensor rks_t = at::tensor(rks, at::kFloat);

    at::Tensor hh = -h[0];
    at::Tensor h_phi_1 = at::expm1(hh);
    at::Tensor h_phi_k = h_phi_1 / hh - 1;
    int64_t factorial_i = 1;
    at::Tensor B_h = bh2_ ? at::expm1(hh) : hh;
    std::vector<at::Tensor> R;
    std::vector<float> b;
    for (int64_t i = 1; i <= order; ++i) {
      R.push_back(at::pow(rks_t, i - 1));
      b.push_back((h_phi_k * factorial_i / B_h).item<float>());
      factorial_i *= (i + 1);
      h_phi_k = h_phi_k / hh - 1.0 / static_cast<double>(factorial_i);
    }
    at::Tensor R_t = at::stack(R);
    at::Tensor b_t = at::tensor(b, at::kFloat);

    bool use_predictor = !D1s.empty();
    at::Tensor D1s_t, rhos_p, rhos_c;
    if (!D1s.empty()) {
      D1s_t = at::stack(D1s, 1);
      if (order == 2) rhos_p = at::tensor(std::vector<float>{0.5f}, at::kFloat);
      else rhos_p = at::linalg_solve(R_t.slice(0, 0, order - 1).slice(1, 0, order - 1), b_t.slice(0, 0, order - 1));
    }
    if (use_corrector) {
      if (order == 1) rhos_c = at::tensor(std::vector<float>{0.5f}, at::kFloat);
      else rhos_c = at::linalg_solve(R_t, b_t);
    }
    at::Tensor model_t;
    at::Tensor x_t_ = expand_dims(sigma_t / sigma_prev_0, dims) * x - expand_dims(alpha_t * h_phi_1, dims) * model_prev_0;
    at::Tensor x_t;
    if (use_predictor) {
      at::Tensor pred_res = at::tensordot(D1s_t, rhos_p, {1}, {0});
      x_t = x_t_ - expand_dims(alpha_t * B_h, dims) * pred_res;
    } else {
      x_t = x_t_ - expand_dims(alpha_t * B_h, dims) * 0;
    }
    if (use_corrector) {
      model_t = model_fn(x_t, t);
      at::Tensor D1_t = model_t - model_prev_0;
      at::Tensor corr = D1s_t.defined()
                            ? at::tensordot(D1s_t, rhos_c.slice(0, 0, rhos_c.size(0) - 1), {1}, {0}) + rhos_c[-1] * D1_t
                            : rhos_c[-1] * D1_t + 0;
      x_t = x_t_ - expand_dims(alpha_t * B_h, dims) * corr;
    }
    return {x_t, model_t};
  }

 private:
  Ctx& ctx_;
  bool bh2_;
};

at::Tensor sample_unipc(Ctx& ctx, at::Tensor noise, at::Tensor sigmas, bool bh2) {
  // ComfyUI writes 0.001 into the last sigma when it is 0 (in place, through a view); we copy.
  at::Tensor timesteps = sigmas.clone();
  if (f(sigmas[-1]) == 0) timesteps[-1] = 0.001;
  at::Tensor x = noise / at::sqrt(timesteps[0].pow(2.0) + 1.0);
  int64_t steps = timesteps.size(0) - 1;
  int64_t order = std::min<int64_t>(3, timesteps.size(0) - 2);
  UniPC uni(ctx, bh2);
  int64_t B = x.size(0);
  std::vector<at::Tensor> model_prev_list, t_prev_list;
  for (int64_t step_index = 0; step_index < steps; ++step_index) {
    if (step_index == 0) {
      at::Tensor vec_t = timesteps[0].expand({B});
      model_prev_list = {uni.model_fn(x, vec_t)};
      t_prev_list = {vec_t};
    } else if (step_index < order) {
      int64_t init_order = step_index;
      at::Tensor vec_t = timesteps[init_order].expand({B});
      auto [x_new, model_x] = uni.update(x, model_prev_list, t_prev_list, vec_t, init_order, true);
      x = x_new;
      if (!model_x.defined()) model_x = uni.model_fn(x, vec_t);
      model_prev_list.push_back(model_x);
      t_prev_list.push_back(vec_t);
    } else {
      int64_t extra_final_step = step_index == steps - 1 ? 1 : 0;
      for (int64_t step = step_index; step < step_index + 1 + extra_final_step; ++step) {
        at::Tensor vec_t = timesteps[step].expand({B});
        int64_t step_order = std::min(order, steps + 1 - step);  // lower_order_final
        bool use_corrector = step != steps;
        auto [x_new, model_x] = uni.update(x, model_prev_list, t_prev_list, vec_t, step_order, use_corrector);
        x = x_new;
        for (int64_t i = 0; i < order - 1; ++i) {
          t_prev_list[static_cast<size_t>(i)] = t_prev_list[static_cast<size_t>(i + 1)];
          model_prev_list[static_cast<size_t>(i)] = model_prev_list[static_cast<size_t>(i + 1)];
        }
        t_prev_list.back() = vec_t;
        if (step < steps) {
          if (!model_x.defined()) model_x = uni.model_fn(x, vec_t);
          model_prev_list.back() = model_x;
        }
      }
    }
    ctx.report(step_index, x, model_prev_list.back(), sigmas[step_index], sigmas[step_index]);
  }
  x = x / marginal_alpha(timesteps[-1]);
  return x;
}

at::Tensor sample_uni_pc(Ctx& ctx, at::Tensor x, at::Tensor sigmas) { return sample_unipc(ctx, x, sigmas, false); }
at::Tensor sample_uni_pc_bh2(Ctx& ctx, at::Tensor x, at::Tensor sigmas) { return sample_unipc(ctx, x, sigmas, true); }

}  // namespace

SampleFn find_uni_pc(const std::string& name) {
  if (name == "uni_pc") return sample_uni_pc;
  if (name == "uni_pc_bh2") return sample_uni_pc_bh2;
  return nullptr;
}

}  // namespace comfy::ksampling
