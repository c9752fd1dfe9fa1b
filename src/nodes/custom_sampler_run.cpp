// nodes_custom_sampler.py, second half: SAMPLER makers, guiders, noise sources, AddNoise and the
// two sampling nodes (SamplerCustom, SamplerCustomAdvanced). See custom_sampler.cpp for how the
// sampler options ComfyUI passes as Python objects travel here.
#include "core/error.h"
#include "core/tensor.h"
#include "graph/execution_context.h"
#include "models/conditioning.h"
#include "models/latent.h"
#include "nodes/custom_sampler.h"
#include "nodes/latent_preview.h"
#include "nodes/sampling_common.h"
#include "sampling/cfg_guider.h"
#include "sampling/guiders.h"
#include "sampling/ksampler.h"
#include "sampling/sampler.h"

namespace comfy {
namespace {

const json kNone = json::object();

NodeDef sampler_node(const char* name) { return custom_node(name, "sampling/custom_sampling/samplers"); }
NodeDef guider_node(const char* name) { return custom_node(name, "sampling/custom_sampling/guiders"); }
NodeDef noise_node(const char* name) { return custom_node(name, "sampling/custom_sampling/noise"); }
ComboOptions list(std::vector<std::string> v) {
  return [v = std::move(v)](const Services&) { return v; };
}
NodeOutput sampler_out(std::string name, SamplerOptions o, SamplerTextOptions text = {}) {
  return NodeOutput({Value::make(Sampler(std::move(name), std::move(o), std::move(text)))});
}
json eta_opts(double max = 100.0) { return floats(1.0, 0.0, max, 0.01); }
json s_noise_opts(double max = 100.0) { return floats(1.0, 0.0, max, 0.01); }
// noise_device "gpu" picks the *_gpu sampler; on the CPU both give the same numbers.
std::string on_device(const std::string& name, const NodeInputs& in) {
  return in.get_string("noise_device") == "cpu" ? name : name + "_gpu";
}

// The shared body of SamplerCustom and SamplerCustomAdvanced: (output, denoised_output).
NodeOutput sample_custom(ExecutionContext& ctx, const Guider& guider, const NoiseSource& noise, uint64_t seed,
                         const Sampler& sampler, const at::Tensor& sigmas, const Latent& input) {
  Latent latent = input;
  latent.samples = fix_empty_latent_channels(guider.model(), latent.samples);
  at::Tensor initial = noise.generate(latent);
  SamplerRun run;
  run.seed = seed;
  int64_t total = sigmas.size(-1) - 1;
  at::Tensor x0;
  LatentPreviewer previewer = get_previewer(ctx, guider.model().latent_format);
  run.callback = [&](const SamplerStep& s) {
    x0 = s.denoised;  // latent_preview.prepare_callback's x0_output
    report_step(ctx, previewer, s.i + 1, total, s.denoised);
  };
  Latent out = latent;
  out.samples = guider.sample(initial, latent.samples, sampler, sigmas, latent.noise_mask, run);
  Latent denoised = out;
  if (x0.defined()) {
    denoised = latent;
    denoised.samples = guider.model().latent_format.process_out(x0.to(at::kFloat));
  }
  return NodeOutput({latent_value(std::move(out)), latent_value(std::move(denoised))});
}

}  // namespace

NodeDef SamplerCustom() {
  return custom_node("SamplerCustom", "sampling/custom_sampling")
      .input("model", "MODEL", kNone)
      .input("add_noise", "BOOLEAN", {{"default", true}})
      .input("noise_seed", "INT", {{"default", 0}, {"min", 0}, {"max", json(UINT64_MAX)}, {"control_after_generate", true}})
      .input("cfg", "FLOAT", cfg_opts())
      .input("positive", "CONDITIONING", kNone)
      .input("negative", "CONDITIONING", kNone)
      .input("sampler", "SAMPLER", kNone)
      .input("sigmas", "SIGMAS", kNone)
      .input("latent_image", "LATENT", kNone)
      .output("LATENT", "output")
      .output("LATENT", "denoised_output")
      .run([](ExecutionContext& ctx, const NodeInputs& in) {
        CFGGuider guider(model_ptr(in["model"]), conditioning_of(in["positive"]), conditioning_of(in["negative"]),
                         in.get_float("cfg"));
        NoiseSource noise;
        noise.seed = in["noise_seed"].as_uint();
        noise.empty = !in.get_bool("add_noise");
        return sample_custom(ctx, guider, noise, noise.seed, in["sampler"].as<Sampler>("SAMPLER"),
                             tensor_of(in["sigmas"], "SIGMAS"), latent_of(in["latent_image"]));
      });
}

NodeDef KSamplerSelect() {
  return sampler_node("KSamplerSelect")
      .v3_combo("sampler_name", [](const Services&) { return sampler_names(); }, kNone)
      .output("SAMPLER")
      .run([](ExecutionContext&, const NodeInputs& in) {
        return NodeOutput({Value(std::shared_ptr<const Object>(sampler_object(in.get_string("sampler_name"))))});
      });
}

std::vector<NodeDef> sampler_option_nodes() {
  std::vector<NodeDef> v;
  v.push_back(sampler_node("SamplerEulerAncestral")
                  .input("eta", "FLOAT", eta_opts())
                  .input("s_noise", "FLOAT", s_noise_opts())
                  .output("SAMPLER")
                  .run([](ExecutionContext&, const NodeInputs& in) {
                    return sampler_out("euler_ancestral", {{"eta", in.get_float("eta")}, {"s_noise", in.get_float("s_noise")}});
                  }));
  v.push_back(sampler_node("SamplerEulerAncestralCFGPP")
                  .display_name("SamplerEulerAncestralCFG++")
                  .input("eta", "FLOAT", eta_opts(1.0))
                  .input("s_noise", "FLOAT", s_noise_opts(10.0))
                  .output("SAMPLER")
                  .run([](ExecutionContext&, const NodeInputs& in) {
                    return sampler_out("euler_ancestral_cfg_pp",
                                       {{"eta", in.get_float("eta")}, {"s_noise", in.get_float("s_noise")}});
                  }));
  v.push_back(sampler_node("SamplerLMS")
                  .input("order", "INT", ints(4, 1, 100))
                  .output("SAMPLER")
                  .run([](ExecutionContext&, const NodeInputs& in) {
                    return sampler_out("lms", {{"order", static_cast<double>(in.get_int("order"))}});
                  }));
  v.push_back(sampler_node("SamplerDPMPP_3M_SDE")
                  .input("eta", "FLOAT", eta_opts())
                  .input("s_noise", "FLOAT", s_noise_opts())
                  .v3_combo("noise_device", list({"gpu", "cpu"}), kNone)
                  .output("SAMPLER")
                  .run([](ExecutionContext&, const NodeInputs& in) {
                    return sampler_out(on_device("dpmpp_3m_sde", in),
                                       {{"eta", in.get_float("eta")}, {"s_noise", in.get_float("s_noise")}});
                  }));
  v.push_back(sampler_node("SamplerDPMPP_2M_SDE")
                  .v3_combo("solver_type", list({"midpoint", "heun"}), kNone)
                  .input("eta", "FLOAT", eta_opts())
                  .input("s_noise", "FLOAT", s_noise_opts())
                  .v3_combo("noise_device", list({"gpu", "cpu"}), kNone)
                  .output("SAMPLER")
                  .run([](ExecutionContext&, const NodeInputs& in) {
                    return sampler_out(on_device("dpmpp_2m_sde", in),
                                       {{"eta", in.get_float("eta")}, {"s_noise", in.get_float("s_noise")}},
                                       {{"solver_type", in.get_string("solver_type")}});
                  }));
  v.push_back(sampler_node("SamplerDPMPP_SDE")
                  .input("eta", "FLOAT", eta_opts())
                  .input("s_noise", "FLOAT", s_noise_opts())
                  .input("r", "FLOAT", floats(0.5, 0.0, 100.0, 0.01))
                  .v3_combo("noise_device", list({"gpu", "cpu"}), kNone)
                  .output("SAMPLER")
                  .run([](ExecutionContext&, const NodeInputs& in) {
                    return sampler_out(on_device("dpmpp_sde", in), {{"eta", in.get_float("eta")},
                                                                    {"s_noise", in.get_float("s_noise")},
                                                                    {"r", in.get_float("r")}});
                  }));
  v.push_back(sampler_node("SamplerDPMPP_2S_Ancestral")
                  .input("eta", "FLOAT", eta_opts())
                  .input("s_noise", "FLOAT", s_noise_opts())
                  .output("SAMPLER")
                  .run([](ExecutionContext&, const NodeInputs& in) {
                    return sampler_out("dpmpp_2s_ancestral",
                                       {{"eta", in.get_float("eta")}, {"s_noise", in.get_float("s_noise")}});
                  }));
  v.push_back(sampler_node("SamplerDPMAdaptative")
                  .input("order", "INT", ints(3, 2, 3))
                  .input("rtol", "FLOAT", floats(0.05, 0.0, 100.0, 0.01))
                  .input("atol", "FLOAT", floats(0.0078, 0.0, 100.0, 0.01))
                  .input("h_init", "FLOAT", floats(0.05, 0.0, 100.0, 0.01))
                  .input("pcoeff", "FLOAT", floats(0.0, 0.0, 100.0, 0.01))
                  .input("icoeff", "FLOAT", floats(1.0, 0.0, 100.0, 0.01))
                  .input("dcoeff", "FLOAT", floats(0.0, 0.0, 100.0, 0.01))
                  .input("accept_safety", "FLOAT", floats(0.81, 0.0, 100.0, 0.01))
                  .input("eta", "FLOAT", floats(0.0, 0.0, 100.0, 0.01))
                  .input("s_noise", "FLOAT", s_noise_opts())
                  .output("SAMPLER")
                  .run([](ExecutionContext&, const NodeInputs& in) {
                    SamplerOptions o{{"order", static_cast<double>(in.get_int("order"))}};
                    for (const char* k : {"rtol", "atol", "h_init", "pcoeff", "icoeff", "dcoeff", "accept_safety", "eta",
                                          "s_noise"})
                      o[k] = in.get_float(k);
                    return sampler_out("dpm_adaptive", std::move(o));
                  }));
  v.push_back(sampler_node("SamplerER_SDE")
                  .v3_combo("solver_type", list({"ER-SDE", "Reverse-time SDE", "ODE"}), kNone)
                  .input("max_stage", "INT", ints(3, 1, 3))
                  .input("eta", "FLOAT",
                         floats(1.0, 0.0, 100.0, 0.01,
                                {{"tooltip",
                                  "Stochastic strength of reverse-time SDE.\nWhen eta=0, it reduces to deterministic "
                                  "ODE. This setting doesn't apply to ER-SDE solver type."}}))
                  .input("s_noise", "FLOAT", s_noise_opts())
                  .output("SAMPLER")
                  .run([](ExecutionContext&, const NodeInputs& in) {
                    const std::string& type = in.get_string("solver_type");
                    double eta = in.get_float("eta"), s_noise = in.get_float("s_noise");
                    if (type == "ODE" || (type == "Reverse-time SDE" && eta == 0)) eta = 0, s_noise = 0;
                    SamplerOptions o{{"s_noise", s_noise}, {"max_stage", static_cast<double>(in.get_int("max_stage"))}};
                    if (type != "ER-SDE") o["noise_scaler_eta"] = eta;  // noise_scaler(x) = x ** (eta + 1)
                    return sampler_out("er_sde", std::move(o));
                  }));
  v.push_back(sampler_node("SamplerSASolver")
                  .input("model", "MODEL", kNone)
                  .input("eta", "FLOAT", floats(1.0, 0.0, 10.0, 0.01))
                  .input("sde_start_percent", "FLOAT", {{"default", 0.2}, {"min", 0.0}, {"max", 1.0}, {"step", 0.001}})
                  .input("sde_end_percent", "FLOAT", {{"default", 0.8}, {"min", 0.0}, {"max", 1.0}, {"step", 0.001}})
                  .input("s_noise", "FLOAT", s_noise_opts())
                  .input("predictor_order", "INT", ints(3, 1, 6))
                  .input("corrector_order", "INT", ints(4, 0, 6))
                  .input("use_pece", "BOOLEAN", kNone)
                  .input("simple_order_2", "BOOLEAN", kNone)
                  .output("SAMPLER")
                  .run([](ExecutionContext&, const NodeInputs& in) {
                    // tau_func = get_tau_interval_func(percent_to_sigma(start), percent_to_sigma(end), eta):
                    // the sampler builds it from these options and the model it samples.
                    model_of(in["model"]);
                    return sampler_out(
                        "sa_solver",
                        {{"sde_start_percent", in.get_float("sde_start_percent")},
                         {"sde_end_percent", in.get_float("sde_end_percent")},
                         {"eta", in.get_float("eta")},
                         {"s_noise", in.get_float("s_noise")},
                         {"predictor_order", static_cast<double>(in.get_int("predictor_order"))},
                         {"corrector_order", static_cast<double>(in.get_int("corrector_order"))},
                         {"use_pece", in.get_bool("use_pece") ? 1.0 : 0.0},
                         {"simple_order_2", in.get_bool("simple_order_2") ? 1.0 : 0.0}});
                  }));
  v.push_back(sampler_node("SamplerSEEDS2")
                  .description("This sampler node can represent multiple samplers:\n\nseeds_2\n- default setting\n\n"
                               "exp_heun_2_x0\n- solver_type=phi_2, r=1.0, eta=0.0\n\nexp_heun_2_x0_sde\n"
                               "- solver_type=phi_2, r=1.0, eta=1.0, s_noise=1.0")
                  .v3_combo("solver_type", list({"phi_1", "phi_2"}), kNone)
                  .input("eta", "FLOAT", floats(1.0, 0.0, 100.0, 0.01, {{"tooltip", "Stochastic strength"}}))
                  .input("s_noise", "FLOAT", floats(1.0, 0.0, 100.0, 0.01, {{"tooltip", "SDE noise multiplier"}}))
                  .input("r", "FLOAT",
                         floats(0.5, 0.01, 1.0, 0.01,
                                {{"tooltip", "Relative step size for the intermediate stage (c2 node)"}}))
                  .output("SAMPLER")
                  .run([](ExecutionContext&, const NodeInputs& in) {
                    return sampler_out("seeds_2", {{"eta", in.get_float("eta")},
                                                   {"s_noise", in.get_float("s_noise")},
                                                   {"r", in.get_float("r")}},
                                       {{"solver_type", in.get_string("solver_type")}});
                  }));
  return v;
}

NodeDef CFGGuiderNode() {
  return guider_node("CFGGuider")
      .input("model", "MODEL", kNone)
      .input("positive", "CONDITIONING", kNone)
      .input("negative", "CONDITIONING", kNone)
      .input("cfg", "FLOAT", cfg_opts())
      .output("GUIDER")
      .run([](ExecutionContext&, const NodeInputs& in) {
        return NodeOutput({Value(std::shared_ptr<const Object>(std::make_shared<const CFGGuider>(
            model_ptr(in["model"]), conditioning_of(in["positive"]), conditioning_of(in["negative"]),
            in.get_float("cfg"))))});
      });
}

NodeDef DualCFGGuiderNode() {
  return guider_node("DualCFGGuider")
      .input("model", "MODEL", kNone)
      .input("cond1", "CONDITIONING", kNone)
      .input("cond2", "CONDITIONING", kNone)
      .input("negative", "CONDITIONING", kNone)
      .input("cfg_conds", "FLOAT", cfg_opts())
      .input("cfg_cond2_negative", "FLOAT", cfg_opts())
      .v3_combo("style", list({"regular", "nested"}), kNone)
      .output("GUIDER")
      .run([](ExecutionContext&, const NodeInputs& in) {
        return NodeOutput({Value(std::shared_ptr<const Object>(std::make_shared<const DualCFGGuider>(
            model_ptr(in["model"]), conditioning_of(in["cond1"]), conditioning_of(in["cond2"]),
            conditioning_of(in["negative"]), in.get_float("cfg_conds"), in.get_float("cfg_cond2_negative"),
            in.get_string("style") == "nested")))});
      });
}

NodeDef BasicGuiderNode() {
  return guider_node("BasicGuider")
      .input("model", "MODEL", kNone)
      .input("conditioning", "CONDITIONING", kNone)
      .output("GUIDER")
      .run([](ExecutionContext&, const NodeInputs& in) {
        return NodeOutput({Value(std::shared_ptr<const Object>(
            std::make_shared<const BasicGuider>(model_ptr(in["model"]), conditioning_of(in["conditioning"]))))});
      });
}

NodeDef RandomNoise() {
  return noise_node("RandomNoise")
      .input("noise_seed", "INT", {{"default", 0}, {"min", 0}, {"max", json(UINT64_MAX)}, {"control_after_generate", true}})
      .output("NOISE")
      .run([](ExecutionContext&, const NodeInputs& in) {
        NoiseSource n;
        n.seed = in["noise_seed"].as_uint();
        return NodeOutput({Value::make(std::move(n))});
      });
}

NodeDef DisableNoise() {
  return noise_node("DisableNoise").output("NOISE").run([](ExecutionContext&, const NodeInputs&) {
    NoiseSource n;
    n.empty = true;
    return NodeOutput({Value::make(std::move(n))});
  });
}

NodeDef AddNoise() {
  return custom_node("AddNoise", "_for_testing/custom_sampling/noise")
      .experimental()
      .input("model", "MODEL", kNone)
      .input("noise", "NOISE", kNone)
      .input("sigmas", "SIGMAS", kNone)
      .input("latent_image", "LATENT", kNone)
      .output("LATENT")
      .run([](ExecutionContext&, const NodeInputs& in) {
        const at::Tensor& sigmas = tensor_of(in["sigmas"], "SIGMAS");
        const Latent& latent = latent_of(in["latent_image"]);
        if (sigmas.size(0) == 0) return NodeOutput({in["latent_image"]});
        const DiffusionModel& model = model_of(in["model"]);
        at::Tensor noisy = noise_of(in["noise"]).generate(latent);
        at::Tensor scale = sigmas.size(0) > 1 ? at::abs(sigmas[0] - sigmas[-1]) : sigmas[0];
        at::Tensor image = latent.samples;
        if (at::count_nonzero(image).item<int64_t>() > 0) image = model.latent_format.process_in(image);
        noisy = model.sampling.noise_scaling(scale.reshape({1}), noisy, image, false);
        noisy = at::nan_to_num(model.latent_format.process_out(noisy), 0.0, 0.0, 0.0);
        Latent out = latent;
        out.samples = noisy;
        return NodeOutput({latent_value(std::move(out))});
      });
}

NodeDef SamplerCustomAdvanced() {
  return custom_node("SamplerCustomAdvanced", "sampling/custom_sampling")
      .input("noise", "NOISE", kNone)
      .input("guider", "GUIDER", kNone)
      .input("sampler", "SAMPLER", kNone)
      .input("sigmas", "SIGMAS", kNone)
      .input("latent_image", "LATENT", kNone)
      .output("LATENT", "output")
      .output("LATENT", "denoised_output")
      .run([](ExecutionContext& ctx, const NodeInputs& in) {
        const NoiseSource& noise = noise_of(in["noise"]);
        return sample_custom(ctx, guider_of(in["guider"]), noise, noise.seed, in["sampler"].as<Sampler>("SAMPLER"),
                             tensor_of(in["sigmas"], "SIGMAS"), latent_of(in["latent_image"]));
      });
}

}  // namespace comfy
