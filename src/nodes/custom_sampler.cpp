// comfy_extras/nodes_custom_sampler.py: schedulers (SIGMAS), sigma tools, SAMPLER makers,
// guiders (GUIDER), noise sources (NOISE), SamplerCustom and SamplerCustomAdvanced.
//
// Sampler options that ComfyUI passes as Python objects travel as numbers in SamplerOptions:
//   SamplerER_SDE     noise_scaler x**(eta+1)        -> "noise_scaler_eta" = eta (absent: ER-SDE's own)
//   SamplerSASolver   tau_func(start, end, eta)      -> "sde_start_percent", "sde_end_percent", "eta"
//                                                     (the sampler converts them with the model's sampling)
//                     use_pece, simple_order_2       -> 0 / 1
// Words (solver_type of SamplerDPMPP_2M_SDE and SamplerSEEDS2) travel as SamplerTextOptions.
#include <cmath>
#include <regex>

#include "core/error.h"
#include "core/tensor.h"
#include "graph/execution_context.h"
#include "models/conditioning.h"
#include "models/latent.h"
#include "nodes/all.h"
#include "nodes/custom_sampler.h"
#include "nodes/sampling_common.h"
#include "sampling/cfg_guider.h"
#include "sampling/custom_schedulers.h"
#include "sampling/guiders.h"
#include "sampling/ksampler.h"
#include "sampling/schedulers.h"

namespace comfy {

NodeDef custom_node(const char* name, const char* category) {
  return NodeDef(name).schema_v3().category(category).python_module("comfy_extras.nodes_custom_sampler");
}
namespace {

NodeDef scheduler_node(const char* name) { return custom_node(name, "sampling/custom_sampling/schedulers"); }
NodeDef sigmas_node(const char* name) { return custom_node(name, "sampling/custom_sampling/sigmas"); }

}  // namespace

json ints(int64_t def, int64_t min, int64_t max) { return {{"default", def}, {"min", min}, {"max", max}}; }
// io.Float.Input(..., round=False)
json floats(double def, double min, double max, double step, json extra) {
  json o = {{"default", def}, {"min", min}, {"max", max}, {"step", step}, {"round", false}};
  for (auto& [k, v] : extra.items()) o[k] = v;
  return o;
}
json cfg_opts() { return {{"default", 8.0}, {"min", 0.0}, {"max", 100.0}, {"step", 0.1}, {"round", 0.01}}; }

namespace {

const json kNone = json::object();  // io.X.Input(name): prints {}

ComboOptions list(std::vector<std::string> v) {
  return [v = std::move(v)](const Services&) { return v; };
}

const at::Tensor& sigmas_in(const NodeInputs& in) { return tensor_of(in["sigmas"], "SIGMAS"); }
NodeOutput sigmas_out(at::Tensor t) { return NodeOutput({tensor_value(std::move(t))}); }

// ---------------------------------------------------------------- schedulers

NodeDef BasicScheduler() {
  return scheduler_node("BasicScheduler")
      .input("model", "MODEL", kNone)
      .v3_combo("scheduler", [](const Services&) { return scheduler_names(); }, kNone)
      .input("steps", "INT", ints(20, 1, 10000))
      .input("denoise", "FLOAT", {{"default", 1.0}, {"min", 0.0}, {"max", 1.0}, {"step", 0.01}})
      .output("SIGMAS")
      .run([](ExecutionContext&, const NodeInputs& in) {
        int64_t steps = in.get_int("steps"), total_steps = steps;
        double denoise = in.get_float("denoise");
        if (denoise < 1.0) {
          if (denoise <= 0.0) return sigmas_out(at::empty({0}, at::kFloat));
          total_steps = static_cast<int64_t>(static_cast<double>(steps) / denoise);
        }
        at::Tensor s = calculate_sigmas(model_of(in["model"]).sampling, in.get_string("scheduler"), total_steps);
        int64_t keep = std::min<int64_t>(steps + 1, s.size(0));
        return sigmas_out(s.narrow(0, s.size(0) - keep, keep));
      });
}

json sigma_max_opts() { return floats(14.614642, 0.0, 5000.0, 0.01); }
json sigma_min_opts() { return floats(0.0291675, 0.0, 5000.0, 0.01); }

NodeDef KarrasScheduler() {
  return scheduler_node("KarrasScheduler")
      .input("steps", "INT", ints(20, 1, 10000))
      .input("sigma_max", "FLOAT", sigma_max_opts())
      .input("sigma_min", "FLOAT", sigma_min_opts())
      .input("rho", "FLOAT", floats(7.0, 0.0, 100.0, 0.01))
      .output("SIGMAS")
      .run([](ExecutionContext&, const NodeInputs& in) {
        return sigmas_out(get_sigmas_karras(in.get_int("steps"), in.get_float("sigma_min"), in.get_float("sigma_max"),
                                     in.get_float("rho")));
      });
}

NodeDef ExponentialScheduler() {
  return scheduler_node("ExponentialScheduler")
      .input("steps", "INT", ints(20, 1, 10000))
      .input("sigma_max", "FLOAT", sigma_max_opts())
      .input("sigma_min", "FLOAT", sigma_min_opts())
      .output("SIGMAS")
      .run([](ExecutionContext&, const NodeInputs& in) {
        return sigmas_out(get_sigmas_exponential(in.get_int("steps"), in.get_float("sigma_min"), in.get_float("sigma_max")));
      });
}

NodeDef PolyexponentialScheduler() {
  return scheduler_node("PolyexponentialScheduler")
      .input("steps", "INT", ints(20, 1, 10000))
      .input("sigma_max", "FLOAT", sigma_max_opts())
      .input("sigma_min", "FLOAT", sigma_min_opts())
      .input("rho", "FLOAT", floats(1.0, 0.0, 100.0, 0.01))
      .output("SIGMAS")
      .run([](ExecutionContext&, const NodeInputs& in) {
        return sigmas_out(get_sigmas_polyexponential(in.get_int("steps"), in.get_float("sigma_min"),
                                              in.get_float("sigma_max"), in.get_float("rho")));
      });
}

NodeDef LaplaceScheduler() {
  return scheduler_node("LaplaceScheduler")
      .input("steps", "INT", ints(20, 1, 10000))
      .input("sigma_max", "FLOAT", sigma_max_opts())
      .input("sigma_min", "FLOAT", sigma_min_opts())
      .input("mu", "FLOAT", floats(0.0, -10.0, 10.0, 0.1))
      .input("beta", "FLOAT", floats(0.5, 0.0, 10.0, 0.1))
      .output("SIGMAS")
      .run([](ExecutionContext&, const NodeInputs& in) {
        return sigmas_out(get_sigmas_laplace(in.get_int("steps"), in.get_float("sigma_min"), in.get_float("sigma_max"),
                                      in.get_float("mu"), in.get_float("beta")));
      });
}

NodeDef VPScheduler() {
  return scheduler_node("VPScheduler")
      .input("steps", "INT", ints(20, 1, 10000))
      .input("beta_d", "FLOAT", floats(19.9, 0.0, 5000.0, 0.01))
      .input("beta_min", "FLOAT", floats(0.1, 0.0, 5000.0, 0.01))
      .input("eps_s", "FLOAT", floats(0.001, 0.0, 1.0, 0.0001))
      .output("SIGMAS")
      .run([](ExecutionContext&, const NodeInputs& in) {
        return sigmas_out(get_sigmas_vp(in.get_int("steps"), in.get_float("beta_d"), in.get_float("beta_min"),
                                 in.get_float("eps_s")));
      });
}

NodeDef BetaSamplingScheduler() {
  return scheduler_node("BetaSamplingScheduler")
      .input("model", "MODEL", kNone)
      .input("steps", "INT", ints(20, 1, 10000))
      .input("alpha", "FLOAT", floats(0.6, 0.0, 50.0, 0.01))
      .input("beta", "FLOAT", floats(0.6, 0.0, 50.0, 0.01))
      .output("SIGMAS")
      .run([](ExecutionContext&, const NodeInputs& in) {
        return sigmas_out(beta_scheduler(model_of(in["model"]).sampling, in.get_int("steps"), in.get_float("alpha"),
                                   in.get_float("beta")));
      });
}

NodeDef SDTurboScheduler() {
  return scheduler_node("SDTurboScheduler")
      .input("model", "MODEL", kNone)
      .input("steps", "INT", ints(1, 1, 10))
      .input("denoise", "FLOAT", {{"default", 1.0}, {"min", 0}, {"max", 1.0}, {"step", 0.01}})
      .output("SIGMAS")
      .run([](ExecutionContext&, const NodeInputs& in) {
        return sigmas_out(sd_turbo_sigmas(model_of(in["model"]).sampling, in.get_int("steps"), in.get_float("denoise")));
      });
}

// ---------------------------------------------------------------- sigma tools

NodeDef SplitSigmas() {
  return sigmas_node("SplitSigmas")
      .input("sigmas", "SIGMAS", kNone)
      .input("step", "INT", ints(0, 0, 10000))
      .output("SIGMAS", "high_sigmas")
      .output("SIGMAS", "low_sigmas")
      .run([](ExecutionContext&, const NodeInputs& in) {
        const at::Tensor& s = sigmas_in(in);
        int64_t n = s.size(0), step = in.get_int("step");
        at::Tensor high = s.slice(0, 0, std::min(step + 1, n)), low = s.slice(0, std::min(step, n), n);
        return NodeOutput({tensor_value(high), tensor_value(low)});
      });
}

NodeDef SplitSigmasDenoise() {
  return sigmas_node("SplitSigmasDenoise")
      .input("sigmas", "SIGMAS", kNone)
      .input("denoise", "FLOAT", {{"default", 1.0}, {"min", 0.0}, {"max", 1.0}, {"step", 0.01}})
      .output("SIGMAS", "high_sigmas")
      .output("SIGMAS", "low_sigmas")
      .run([](ExecutionContext&, const NodeInputs& in) {
        const at::Tensor& s = sigmas_in(in);
        int64_t n = s.size(0);
        int64_t steps = std::max<int64_t>(n - 1, 0);
        int64_t total = static_cast<int64_t>(std::nearbyint(static_cast<double>(steps) * in.get_float("denoise")));
        // Python's sigmas[:-total] is empty for total 0; sigmas[-(total+1):] clips at the start.
        at::Tensor high = total == 0 ? s.slice(0, 0, 0) : s.slice(0, 0, std::max<int64_t>(n - total, 0));
        at::Tensor low = s.slice(0, std::max<int64_t>(n - (total + 1), 0), n);
        return NodeOutput({tensor_value(high), tensor_value(low)});
      });
}

NodeDef FlipSigmas() {
  return sigmas_node("FlipSigmas")
      .input("sigmas", "SIGMAS", kNone)
      .output("SIGMAS")
      .run([](ExecutionContext&, const NodeInputs& in) {
        const at::Tensor& s = sigmas_in(in);
        if (s.size(0) == 0) return sigmas_out(s);
        at::Tensor f = s.flip(0);
        if (f[0].item<double>() == 0) f[0] = 0.0001;
        return sigmas_out(f);
      });
}

NodeDef SetFirstSigma() {
  return sigmas_node("SetFirstSigma")
      .input("sigmas", "SIGMAS", kNone)
      .input("sigma", "FLOAT", floats(136.0, 0.0, 20000.0, 0.001))
      .output("SIGMAS")
      .run([](ExecutionContext&, const NodeInputs& in) {
        at::Tensor s = sigmas_in(in).clone();
        if (s.size(0) == 0) throw ComfyError("IndexError", "index 0 is out of bounds for dimension 0 with size 0");
        s[0] = in.get_float("sigma");
        return sigmas_out(s);
      });
}

NodeDef ExtendIntermediateSigmas() {
  return sigmas_node("ExtendIntermediateSigmas")
      .input("sigmas", "SIGMAS", kNone)
      .input("steps", "INT", ints(2, 1, 100))
      .input("start_at_sigma", "FLOAT", floats(-1.0, -1.0, 20000.0, 0.01))
      .input("end_at_sigma", "FLOAT", floats(12.0, 0.0, 20000.0, 0.01))
      .v3_combo("spacing", list({"linear", "cosine", "sine"}), kNone)
      .output("SIGMAS")
      .run([](ExecutionContext&, const NodeInputs& in) {
        const at::Tensor& sigmas = sigmas_in(in);
        double start = in.get_float("start_at_sigma"), end = in.get_float("end_at_sigma");
        if (start < 0) start = INFINITY;
        int64_t steps = in.get_int("steps");
        at::Tensor x = at::linspace(0, 1, steps + 1, at::kFloat).slice(0, 1, steps);
        const std::string& spacing = in.get_string("spacing");
        at::Tensor spaced = spacing == "cosine" ? at::sin(x * M_PI / 2)
                            : spacing == "sine" ? 1 - at::cos(x * M_PI / 2)
                                                : x;
        std::vector<float> out;
        int64_t n = sigmas.size(0);
        for (int64_t i = 0; i + 1 < n; ++i) {
          at::Tensor cur = sigmas[i], next = sigmas[i + 1];
          float c = cur.item<float>();
          out.push_back(c);
          if (static_cast<float>(end) <= c && c <= static_cast<float>(start)) {
            at::Tensor mid = (spaced * (next - cur) + cur).contiguous();
            for (int64_t k = 0; k < mid.size(0); ++k) out.push_back(mid[k].item<float>());
          }
        }
        if (n > 0) out.push_back(sigmas[n - 1].item<float>());
        return sigmas_out(at::tensor(out, at::kFloat));
      });
}

NodeDef SamplingPercentToSigma() {
  return sigmas_node("SamplingPercentToSigma")
      .input("model", "MODEL", kNone)
      .input("sampling_percent", "FLOAT", {{"default", 0.0}, {"min", 0.0}, {"max", 1.0}, {"step", 0.0001}})
      .input("return_actual_sigma", "BOOLEAN",
             {{"default", false},
              {"tooltip",
               "Return the actual sigma value instead of the value used for interval checks.\nThis only affects "
               "results at 0.0 and 1.0."}})
      .output("FLOAT", "sigma_value")
      .run([](ExecutionContext&, const NodeInputs& in) {
        const ModelSampling& ms = model_of(in["model"]).sampling;
        double p = in.get_float("sampling_percent");
        double sigma = ms.percent_to_sigma(p);
        if (in.get_bool("return_actual_sigma")) {
          if (p == 0.0) sigma = ms.sigma_max();
          else if (p == 1.0) sigma = ms.sigma_min();
        }
        return NodeOutput({Value(json(sigma))});
      });
}

NodeDef ManualSigmas() {
  return custom_node("ManualSigmas", "_for_testing/custom_sampling")
      .experimental()
      .input("sigmas", "STRING", {{"default", "1, 0.5"}, {"multiline", false}})
      .output("SIGMAS")
      .run([](ExecutionContext&, const NodeInputs& in) {
        static const std::regex number(R"([-+]?(?:\d*\.*\d+))");
        const std::string& text = in.get_string("sigmas");
        std::vector<float> values;
        for (auto it = std::sregex_iterator(text.begin(), text.end(), number); it != std::sregex_iterator(); ++it) {
          std::string s = it->str();
          size_t used = 0;
          double v = 0;
          try { v = std::stod(s, &used); } catch (const std::exception&) { used = 0; }
          if (used != s.size()) throw ComfyError("ValueError", "could not convert string to float: '" + s + "'");
          values.push_back(static_cast<float>(v));
        }
        return sigmas_out(at::tensor(values, at::kFloat).reshape({static_cast<int64_t>(values.size())}));
      });
}

}  // namespace

void register_custom_sampler(Registry& r) {
  // ComfyUI's CustomSamplersExtension order; the SAMPLER/GUIDER/NOISE nodes and the two
  // sampling nodes are in custom_sampler_run.cpp.
  r.add(SamplerCustom());
  r.add(BasicScheduler());
  r.add(KarrasScheduler());
  r.add(ExponentialScheduler());
  r.add(PolyexponentialScheduler());
  r.add(LaplaceScheduler());
  r.add(VPScheduler());
  r.add(BetaSamplingScheduler());
  r.add(SDTurboScheduler());
  r.add(KSamplerSelect());
  for (NodeDef& d : sampler_option_nodes()) r.add(std::move(d));
  r.add(SplitSigmas());
  r.add(SplitSigmasDenoise());
  r.add(FlipSigmas());
  r.add(SetFirstSigma());
  r.add(ExtendIntermediateSigmas());
  r.add(SamplingPercentToSigma());
  r.add(CFGGuiderNode());
  r.add(DualCFGGuiderNode());
  r.add(BasicGuiderNode());
  r.add(RandomNoise());
  r.add(DisableNoise());
  r.add(AddNoise());
  r.add(SamplerCustomAdvanced());
  r.add(ManualSigmas());
}

}  // namespace comfy
