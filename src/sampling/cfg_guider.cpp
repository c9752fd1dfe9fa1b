// The per-call half of comfy/samplers.py: get_area_and_mult, the cond batching of
// calc_cond_batch and cfg_function; and the guiders' predict_noise. The per-run half
// (process_conds, CFGGuider.sample) is in guider_sample.cpp.
#include "sampling/cfg_guider.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "core/tensor_utils.h"
#include "models/controlnet_model.h"

namespace comfy {
namespace {


// get_area_and_mult's result: the slice of x one entry sees, its weight, its model conds.
struct CondRun {
  at::Tensor input_x, mult;
  at::Tensor c_crossattn, c_concat, y;
  std::optional<std::array<int64_t, 4>> area;
  const Object* control = nullptr;
  size_t cond_index = 0;
};

std::optional<CondRun> get_area_and_mult(const SamplingCond& c, const at::Tensor& x_in, const at::Tensor& sigma) {
  // Timestep ranges compare sigmas; torch compares a float tensor with a Python float in f32.
  float t0 = sigma[0].item<float>();
  if (c.timestep_start && t0 > static_cast<float>(*c.timestep_start)) return std::nullopt;
  if (c.timestep_end && t0 < static_cast<float>(*c.timestep_end)) return std::nullopt;

  CondRun r;
  std::optional<std::array<int64_t, 4>> area = c.area;
  at::Tensor input_x = x_in;
  if (area) {
    auto& a = *area;
    for (int i = 0; i < 2; ++i) {
      a[i] = std::min(input_x.size(i + 2) - a[2 + i], a[i]);
      input_x = input_x.narrow(i + 2, a[2 + i], a[i]);
    }
  }
  double strength = c.strength.value_or(1.0);
  at::Tensor mask;
  if (c.mask.defined()) {
    double mask_strength = c.mask_strength.value_or(1.0);
    mask = c.mask.narrow(0, 0, std::min(c.mask.size(0), input_x.size(0)));
    if (area)
      for (int i = 0; i < 2; ++i) mask = mask.narrow(i + 1, (*area)[2 + i], (*area)[i]);
    mask = mask * mask_strength;
    mask = mask.unsqueeze(1).repeat({input_x.size(0) / mask.size(0), input_x.size(1), 1, 1});
  } else {
    mask = at::ones_like(input_x);
  }
  at::Tensor mult = mask * strength;

  // An area without a mask fades in over up to 8 latent pixels at each inner edge, so areas
  // blend with what surrounds them.
  if (!c.mask.defined() && area) {
    const int64_t fuzz = 8;
    for (int i = 0; i < 2; ++i) {
      int64_t rr = std::min(fuzz, mult.size(2 + i) / 4);
      if ((*area)[2 + i] != 0)
        for (int64_t t = 0; t < rr; ++t) mult.narrow(i + 2, t, 1).mul_((1.0 / rr) * (t + 1));
      if ((*area)[i] + (*area)[2 + i] < x_in.size(i + 2))
        for (int64_t t = 0; t < rr; ++t) mult.narrow(i + 2, (*area)[i] - 1 - t, 1).mul_((1.0 / rr) * (t + 1));
    }
  }

  int64_t batch = x_in.size(0);
  if (c.c_concat.defined()) {
    at::Tensor data = c.c_concat;
    if (area)
      for (int i = 0; i < 2; ++i) data = data.narrow(i + 2, (*area)[2 + i], (*area)[i]);
    r.c_concat = repeat_to_batch_size(data, batch);
  }
  if (c.y.defined()) r.y = repeat_to_batch_size(c.y, batch);
  if (c.c_crossattn.defined()) r.c_crossattn = repeat_to_batch_size(c.c_crossattn, batch);
  r.input_x = input_x;
  r.mult = mult;
  r.area = area;
  r.control = c.control.get();
  return r;
}

// CONDCrossAttn.can_concat: token counts may differ when one repeats into the other (up to 4x).
bool crossattn_can_concat(const at::Tensor& a, const at::Tensor& b) {
  if (a.sizes() == b.sizes()) return true;
  if (a.size(0) != b.size(0) || a.size(2) != b.size(2)) return false;
  int64_t l = std::lcm(a.size(1), b.size(1));
  return l / std::min(a.size(1), b.size(1)) <= 4;
}

bool can_concat(const CondRun& a, const CondRun& b) {
  if (a.input_x.sizes() != b.input_x.sizes()) return false;
  if (a.control != b.control) return false;
  auto same_key = [](const at::Tensor& p, const at::Tensor& q) { return p.defined() == q.defined(); };
  if (!same_key(a.c_crossattn, b.c_crossattn) || !same_key(a.c_concat, b.c_concat) || !same_key(a.y, b.y))
    return false;
  if (a.c_crossattn.defined() && !crossattn_can_concat(a.c_crossattn, b.c_crossattn)) return false;
  if (a.c_concat.defined() && a.c_concat.sizes() != b.c_concat.sizes()) return false;
  if (a.y.defined() && a.y.sizes() != b.y.sizes()) return false;
  return true;
}

// CONDCrossAttn.concat: shorter contexts are repeated up to the lcm of the token counts.
at::Tensor crossattn_cat(const std::vector<at::Tensor>& conds) {
  int64_t len = conds[0].size(1);
  for (size_t i = 1; i < conds.size(); ++i) len = std::lcm(len, conds[i].size(1));
  std::vector<at::Tensor> out;
  for (const auto& c : conds) out.push_back(c.size(1) < len ? c.repeat({1, len / c.size(1), 1}) : c);
  return at::cat(out);
}

}  // namespace

const SamplingConds* GuiderRun::get(const std::string& name) const {
  for (auto& [n, c] : conds)
    if (n == name) return &c;
  return nullptr;
}

std::vector<at::Tensor> calc_cond_batch(const ModelApply& apply, const std::vector<const SamplingConds*>& conds,
                                        const at::Tensor& x, const at::Tensor& sigma) {
  std::vector<at::Tensor> out_conds, out_counts;
  std::vector<CondRun> to_run;
  for (size_t i = 0; i < conds.size(); ++i) {
    out_conds.push_back(at::zeros_like(x));
    out_counts.push_back(at::ones_like(x) * 1e-37);
    if (!conds[i]) continue;
    for (const SamplingCond& c : *conds[i]) {
      auto p = get_area_and_mult(c, x, sigma);
      if (!p) continue;
      p->cond_index = i;
      to_run.push_back(std::move(*p));
    }
  }

  while (!to_run.empty()) {
    // Every entry that can share a call with the first one, taken from the last (ComfyUI pops
    // the indices in reverse; on the CPU the whole group fits in memory).
    std::vector<size_t> to_batch;
    for (size_t i = 0; i < to_run.size(); ++i)
      if (can_concat(to_run[i], to_run[0])) to_batch.push_back(i);
    std::reverse(to_batch.begin(), to_batch.end());

    std::vector<CondRun> batch;
    for (size_t i : to_batch) {
      batch.push_back(std::move(to_run[i]));
      to_run.erase(to_run.begin() + static_cast<std::ptrdiff_t>(i));
    }

    std::vector<at::Tensor> xs, crossattn, concat, ys;
    for (auto& b : batch) {
      xs.push_back(b.input_x);
      if (b.c_crossattn.defined()) crossattn.push_back(b.c_crossattn);
      if (b.c_concat.defined()) concat.push_back(b.c_concat);
      if (b.y.defined()) ys.push_back(b.y);
    }
    int64_t chunks = static_cast<int64_t>(batch.size());
    at::Tensor input_x = at::cat(xs);
    ModelConds mc;
    if (!crossattn.empty()) mc.c_crossattn = crossattn_cat(crossattn);
    if (!concat.empty()) mc.c_concat = at::cat(concat);
    if (!ys.empty()) mc.y = at::cat(ys);
    at::Tensor timestep = at::cat(std::vector<at::Tensor>(static_cast<size_t>(chunks), sigma));
    // The batch's ControlNet chain (one for all: can_concat compares them) gives the residuals.
    std::optional<UNetControl> control;
    if (const auto* pc = dynamic_cast<const PreparedControl*>(batch.back().control)) {
      control = pc->get_control(input_x, timestep, mc, chunks);
      if (control) mc.control = &*control;
    }
    std::vector<at::Tensor> output = apply(input_x, timestep, mc).chunk(chunks);

    for (int64_t o = 0; o < chunks; ++o) {
      const CondRun& b = batch[static_cast<size_t>(o)];
      at::Tensor out_c = out_conds[b.cond_index], out_cts = out_counts[b.cond_index];
      if (b.area) {
        for (int i = 0; i < 2; ++i) {
          out_c = out_c.narrow(i + 2, (*b.area)[2 + i], (*b.area)[i]);
          out_cts = out_cts.narrow(i + 2, (*b.area)[2 + i], (*b.area)[i]);
        }
      }
      out_c.add_(output[static_cast<size_t>(o)] * b.mult);
      out_cts.add_(b.mult);
    }
  }
  for (size_t i = 0; i < out_conds.size(); ++i) out_conds[i].div_(out_counts[i]);
  return out_conds;
}

at::Tensor cfg_function(GuiderRun& run, const at::Tensor& cond_pred, const at::Tensor& uncond_pred, double cond_scale) {
  at::Tensor result = uncond_pred + (cond_pred - uncond_pred) * cond_scale;
  // The cfg_pp samplers' sampler_post_cfg_function: keeps uncond_denoised, returns denoised.
  if (run.capture_uncond) run.last_uncond = uncond_pred;
  return result;
}

namespace {
// math.isclose with its default rel_tol 1e-9.
bool isclose(double a, double b) { return std::fabs(a - b) <= 1e-9 * std::max(std::fabs(a), std::fabs(b)); }
}  // namespace

Guider::Guider(std::shared_ptr<const DiffusionModel> model, ModelApply apply)
    : model_(std::move(model)), apply_(std::move(apply)) {
  if (!model_) throw ComfyError("ValueError", "guider: no model");
  if (!apply_) {
    std::shared_ptr<const DiffusionModel> m = model_;
    apply_ = [m](const at::Tensor& x, const at::Tensor& sigma, const ModelConds& c) { return m->apply_model(x, sigma, c); };
  }
}

CFGGuider::CFGGuider(std::shared_ptr<const DiffusionModel> model, const Conditioning& positive,
                     const Conditioning& negative, double cfg, ModelApply apply)
    : Guider(std::move(model), std::move(apply)), cfg_(cfg) {
  conds_ = {{"positive", positive.entries}, {"negative", negative.entries}};
}

// sampling_function: cfg 1 skips the negative unless a cfg_pp sampler needs it.
at::Tensor CFGGuider::predict(GuiderRun& run, const at::Tensor& x, const at::Tensor& sigma) const {
  const SamplingConds* uncond = run.get("negative");
  if (isclose(cfg_, 1.0) && !run.capture_uncond) uncond = nullptr;
  auto out = calc_cond_batch(apply(), {run.get("positive"), uncond}, x, sigma);
  return cfg_function(run, out[0], out[1], cfg_);
}

BasicGuider::BasicGuider(std::shared_ptr<const DiffusionModel> model, const Conditioning& positive, ModelApply apply)
    : Guider(std::move(model), std::move(apply)) {
  conds_ = {{"positive", positive.entries}};
}

at::Tensor BasicGuider::predict(GuiderRun& run, const at::Tensor& x, const at::Tensor& sigma) const {
  auto out = calc_cond_batch(apply(), {run.get("positive"), nullptr}, x, sigma);
  return cfg_function(run, out[0], out[1], 1.0);
}

DualCFGGuider::DualCFGGuider(std::shared_ptr<const DiffusionModel> model, const Conditioning& cond1,
                             const Conditioning& cond2, const Conditioning& negative, double cfg1, double cfg2,
                             bool nested, ModelApply apply)
    : Guider(std::move(model), std::move(apply)), cfg1_(cfg1), cfg2_(cfg2), nested_(nested) {
  // ComfyUI marks the middle conditioning prompt_type "negative"; only models whose extra conds
  // read prompt_type (none of SD1/SD2) see a difference.
  conds_ = {{"positive", cond1.entries}, {"middle", cond2.entries}, {"negative", negative.entries}};
}

at::Tensor DualCFGGuider::predict(GuiderRun& run, const at::Tensor& x, const at::Tensor& sigma) const {
  const SamplingConds* negative = run.get("negative");
  const SamplingConds* middle = run.get("middle");
  const SamplingConds* positive = run.get("positive");
  if (nested_) {
    auto out = calc_cond_batch(apply(), {negative, middle, positive}, x, sigma);
    at::Tensor pred_text = cfg_function(run, out[2], out[1], cfg1_);
    return out[0] + cfg2_ * (pred_text - out[0]);
  }
  if (!run.capture_uncond && isclose(cfg2_, 1.0)) {
    negative = nullptr;
    if (isclose(cfg1_, 1.0)) middle = nullptr;
  }
  auto out = calc_cond_batch(apply(), {negative, middle, positive}, x, sigma);
  return cfg_function(run, out[1], out[0], cfg2_) + (out[2] - out[1]) * cfg1_;
}

}  // namespace comfy
