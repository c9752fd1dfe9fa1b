// The per-run half of comfy/samplers.py: process_conds (resolve_areas_and_cond_masks_multidim,
// calculate_start_end_timesteps, encode_model_conds with BaseModel.extra_conds/concat_cond,
// create_cond_with_same_area_if_none, pre_run_control with the ControlNet uncond filling) and
// CFGGuider.sample/outer_sample/inner_sample.
#include <algorithm>
#include <cmath>
#include <map>

#include "core/error.h"
#include "core/upscale.h"
#include "models/controlnet_model.h"
#include "sampling/cfg_guider.h"

namespace comfy {
namespace {

// Python's round(): halves go to the even neighbour (the default FE_TONEAREST mode).
int64_t py_round(double v) { return static_cast<int64_t>(std::nearbyint(v)); }

// comfy.utils.resize_to_batch_size.
at::Tensor resize_to_batch_size(const at::Tensor& t, int64_t batch) {
  int64_t in = t.size(0);
  if (in == batch) return t;
  if (batch <= 1) return t.narrow(0, 0, batch);
  std::vector<int64_t> idx;
  if (batch < in) {
    double scale = static_cast<double>(in - 1) / static_cast<double>(batch - 1);
    for (int64_t i = 0; i < batch; ++i) idx.push_back(std::min(py_round(static_cast<double>(i) * scale), in - 1));
  } else {
    double scale = static_cast<double>(in) / static_cast<double>(batch);
    for (int64_t i = 0; i < batch; ++i)
      idx.push_back(std::min(static_cast<int64_t>(std::floor((static_cast<double>(i) + 0.5) * scale)), in - 1));
  }
  return t.index_select(0, at::tensor(idx, at::kLong));
}

// get_mask_aabb of one mask [H,W]: (x0, y0, x1, y1), or nullopt when all zero.
std::optional<std::array<int64_t, 4>> mask_aabb(const at::Tensor& mask) {
  at::Tensor nz = at::nonzero(mask);
  if (nz.size(0) == 0) return std::nullopt;
  at::Tensor y = nz.select(1, 0), x = nz.select(1, 1);
  return std::array<int64_t, 4>{x.min().item<int64_t>(), y.min().item<int64_t>(), x.max().item<int64_t>(),
                                y.max().item<int64_t>()};
}

// resolve_areas_and_cond_masks_multidim for one entry (2-D latents).
void resolve_area_and_mask(SamplingCond& c, int64_t h, int64_t w) {
  const CondOptions& o = c.options;
  if (o.area) {
    const auto& a = o.area->hwyx;
    if (o.area->percentage) {
      c.area = std::array<int64_t, 4>{std::max<int64_t>(1, py_round(a[0] * static_cast<double>(h))),
                                      std::max<int64_t>(1, py_round(a[1] * static_cast<double>(w))),
                                      py_round(a[2] * static_cast<double>(h)), py_round(a[3] * static_cast<double>(w))};
    } else {
      c.area = std::array<int64_t, 4>{static_cast<int64_t>(a[0]), static_cast<int64_t>(a[1]),
                                      static_cast<int64_t>(a[2]), static_cast<int64_t>(a[3])};
    }
  }
  if (o.mask.defined()) {
    at::Tensor mask = o.mask.to(at::kFloat);
    if (mask.dim() == 2) mask = mask.unsqueeze(0);
    if (mask.dim() != 3) throw ComfyError("ValueError", "conditioning mask must be [H,W] or [B,H,W]");
    if (mask.size(1) != h || mask.size(2) != w)
      mask = common_upscale(mask.unsqueeze(1), w, h, "bilinear", "none").squeeze(1);
    if (o.set_area_to_bounds.value_or(false)) {
      at::Tensor bounds = std::get<0>(at::max(at::abs(mask), 0));
      auto box = mask_aabb(bounds);
      if (!box) {
        c.area = std::array<int64_t, 4>{8, 8, 0, 0};  // an all-zero mask: the smallest no-op area
      } else {
        auto [x0, y0, x1, y1] = *box;
        c.area = std::array<int64_t, 4>{std::max<int64_t>(8, y1 - y0 + 1), std::max<int64_t>(8, x1 - x0 + 1), y0, x0};
      }
    }
    c.mask = mask;
    c.mask_strength = o.mask_strength;
  }
}

// BaseModel.concat_cond for inpainting UNets (concat keys "mask", "masked_image").
at::Tensor concat_cond(const DiffusionModel& model, const CondOptions& o, const at::Tensor& noise,
                       const at::Tensor& latent_image, const at::Tensor& denoise_mask) {
  int64_t B = noise.size(0), H = noise.size(-2), W = noise.size(-1);
  at::Tensor mask = o.concat_mask.defined() ? o.concat_mask : denoise_mask;
  at::Tensor image = o.concat_latent_image.defined() ? model.latent_format.process_in(o.concat_latent_image)
                                                     : latent_image;
  if (image.sizes().slice(1) != noise.sizes().slice(1)) image = common_upscale(image, W, H, "bilinear", "center");
  image = resize_to_batch_size(image, B);
  if (mask.defined()) {
    if (mask.dim() == noise.dim()) mask = mask.narrow(1, 0, 1);
    mask = mask.reshape({-1, 1, mask.size(-2), mask.size(-1)});
    if (mask.size(-2) != H || mask.size(-1) != W) mask = common_upscale(mask, W, H, "bilinear", "center");
    mask = resize_to_batch_size(mask.round(), B);
    return at::cat({mask, image}, 1);
  }
  // No mask: the whole image is to be painted over a blank ("zero" pixels in latent space).
  at::Tensor blank = at::ones_like(noise);
  const double fill[4] = {0.8223, -0.6876, 0.6364, 0.1380};
  for (int64_t ch = 0; ch < std::min<int64_t>(4, blank.size(1)); ++ch) blank.select(1, ch).mul_(fill[ch]);
  return at::cat({at::ones_like(noise).narrow(1, 0, 1), blank}, 1);
}

// create_cond_with_same_area_if_none: every area entry of one list gets an entry over the same
// area in the other list, taking the model conds of the smallest entry there that contains it.
void add_same_area(SamplingConds& conds, const SamplingCond& c) {
  if (!c.area) return;
  const auto& ca = *c.area;
  auto inside = [&](const std::array<int64_t, 4>& cmp) {
    for (int i = 0; i < 2; ++i)
      if (ca[2 + i] < cmp[2 + i]) return false;
    for (int i = 0; i < 2; ++i)
      if (ca[i] + ca[2 + i] > cmp[i] + cmp[2 + i]) return false;
    return true;
  };
  const SamplingCond* smallest = nullptr;
  for (const SamplingCond& x : conds) {
    if (x.area) {
      if (!inside(*x.area)) continue;
      if (!smallest || !smallest->area)
        smallest = &x;
      else if ((*smallest->area)[0] * (*smallest->area)[1] > (*x.area)[0] * (*x.area)[1])
        smallest = &x;
    } else if (!smallest) {
      smallest = &x;
    }
  }
  if (!smallest) return;
  if (smallest->area && *smallest->area == ca) return;
  SamplingCond out = c;
  out.c_crossattn = smallest->c_crossattn;
  out.c_concat = smallest->c_concat;
  out.y = smallest->y;
  conds.push_back(std::move(out));
}

// The Denoiser a sampler calls: the guider's prediction with this run's conds.
class RunDenoiser : public Denoiser {
 public:
  RunDenoiser(const Guider& g, GuiderRun& run) : guider_(g), run_(run) {}
  at::Tensor operator()(const at::Tensor& x, const at::Tensor& sigma) override { return guider_.predict(run_, x, sigma); }
  const ModelSampling& model_sampling() const override { return guider_.model().sampling; }
  void capture_uncond(bool on) override { run_.capture_uncond = on; }
  at::Tensor last_uncond_denoised() const override { return run_.last_uncond; }

 private:
  const Guider& guider_;
  GuiderRun& run_;
};

// comfy.utils.reshape_mask for a 2-D latent shape [B,C,H,W].
at::Tensor reshape_mask(const at::Tensor& mask, at::IntArrayRef shape) {
  at::Tensor m = mask.to(at::kFloat).reshape({-1, 1, mask.size(-2), mask.size(-1)});
  m = at::upsample_bilinear2d(m, {shape[2], shape[3]}, false);
  if (m.size(1) < shape[1]) m = m.repeat({1, shape[1], 1, 1}).narrow(1, 0, shape[1]);
  int64_t have = m.size(0);
  if (have > shape[0]) return m.narrow(0, 0, shape[0]);
  if (have < shape[0]) return m.repeat({(shape[0] + have - 1) / have, 1, 1, 1}).narrow(0, 0, shape[0]);
  return m;
}

// pre_run_control: every ControlNet chain bound to the model's sampling, one PreparedControl per
// distinct chain (entries that shared a ControlNet keep sharing one, so they still batch); then
// apply_empty_x_to_equal_area for 'control': the positive's ControlNets marked
// control_apply_to_uncond go onto the other lists' area-less entries, unless one already has one.
void pre_run_control(const DiffusionModel& model, std::vector<std::pair<std::string, SamplingConds>>& conds) {
  std::map<const Object*, std::shared_ptr<const Object>> prepared;
  for (auto& [name, list] : conds) {
    for (SamplingCond& c : list) {
      if (!c.control) continue;
      auto it = prepared.find(c.control.get());
      if (it == prepared.end()) {
        auto cn = std::dynamic_pointer_cast<const ControlNet>(c.control);
        if (!cn) throw ComfyError("TypeError", "conditioning 'control' is not a CONTROL_NET");
        cn->check_compatible(model);
        it = prepared.emplace(c.control.get(), std::make_shared<const PreparedControl>(cn, model.sampling)).first;
      }
      c.control = it->second;
    }
  }
  const SamplingConds* positive = nullptr;
  for (auto& [name, list] : conds)
    if (name == "positive") positive = &list;
  if (!positive) return;
  std::vector<std::shared_ptr<const Object>> cond_cnets;
  for (const SamplingCond& c : *positive)
    if (c.options.control_apply_to_uncond.value_or(false) && !c.area && c.control) cond_cnets.push_back(c.control);
  for (auto& [name, list] : conds) {
    if (name == "positive") continue;
    std::vector<size_t> other;
    bool has_cnet = false;
    for (size_t i = 0; i < list.size(); ++i) {
      if (list[i].area) continue;
      if (list[i].control)
        has_cnet = true;
      else
        other.push_back(i);
    }
    if (has_cnet || cond_cnets.empty()) continue;
    if (other.empty()) throw ComfyError("ZeroDivisionError", "integer modulo by zero");
    const SamplingConds original = list;
    for (size_t x = 0; x < cond_cnets.size(); ++x) {
      const size_t idx = other[x % other.size()];
      SamplingCond n = original[idx];
      n.control = cond_cnets[x];
      list[idx] = std::move(n);
    }
  }
}

}  // namespace

std::vector<std::pair<std::string, SamplingConds>> process_conds(
    const DiffusionModel& model, const std::vector<std::pair<std::string, std::vector<CondEntry>>>& conds,
    const at::Tensor& noise, const at::Tensor& latent_image, const at::Tensor& denoise_mask) {
  if (noise.dim() != 4) throw ComfyError("ValueError", "sampling needs a 4-D latent [B,C,H,W]");
  int64_t h = noise.size(2), w = noise.size(3);
  bool inpaint = model.unet.in_channels > 4;  // supported_models_base.inpaint_model
  std::vector<std::pair<std::string, SamplingConds>> out;
  for (const auto& [name, entries] : conds) {
    SamplingConds list;
    for (const CondEntry& e : entries) {
      SamplingCond c;
      c.options = e.options;
      resolve_area_and_mask(c, h, w);
      c.strength = e.options.strength;
      c.control = e.options.control;
      // calculate_start_end_timesteps
      if (e.options.start_percent) c.timestep_start = model.sampling.percent_to_sigma(*e.options.start_percent);
      if (e.options.end_percent) c.timestep_end = model.sampling.percent_to_sigma(*e.options.end_percent);
      // encode_model_conds -> BaseModel.extra_conds
      if (inpaint) c.c_concat = concat_cond(model, e.options, noise, latent_image, denoise_mask);
      if (e.cond.defined()) c.c_crossattn = e.cond;
      list.push_back(std::move(c));
    }
    out.emplace_back(name, std::move(list));
  }
  for (size_t k = 0; k < out.size(); ++k)
    for (size_t i = 0; i < out[k].second.size(); ++i)
      for (size_t kk = 0; kk < out.size(); ++kk)
        if (k != kk) add_same_area(out[kk].second, SamplingCond(out[k].second[i]));
  pre_run_control(model, out);
  return out;
}

at::Tensor Guider::sample(const at::Tensor& noise_in, const at::Tensor& latent_in, const Sampler& sampler,
                          const at::Tensor& sigmas_in, const at::Tensor& denoise_mask_in, SamplerRun& run) const {
  if (sigmas_in.size(-1) == 0) return latent_in;
  at::Tensor latent_image = latent_in.to(at::kFloat);
  at::Tensor noise = noise_in.to(at::kFloat);
  at::Tensor sigmas = sigmas_in.to(at::kFloat);
  at::Tensor denoise_mask;
  if (denoise_mask_in.defined()) denoise_mask = reshape_mask(denoise_mask_in, latent_image.sizes());

  // inner_sample: the empty latent stays as it is (shifting zeros would move it off zero).
  if (at::count_nonzero(latent_image).item<int64_t>() > 0)
    latent_image = model().latent_format.process_in(latent_image);
  GuiderRun state;
  state.conds = process_conds(model(), conds_, noise, latent_image, denoise_mask);
  RunDenoiser denoiser(*this, state);

  bool max_denoise = Sampler::max_denoise(model().sampling, sigmas);
  at::Tensor samples = sampler.sample(denoiser, sigmas, noise, latent_image, denoise_mask, run, max_denoise);
  return model().latent_format.process_out(samples.to(at::kFloat));
}

}  // namespace comfy
