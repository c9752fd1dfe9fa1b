// Every sampler against ComfyUI's own KSAMPLER.sample on an analytic fake model
// (tools/oracle/record_samplers.py -> fixtures/sampling/samplers.json): a txt2img run over 6
// karras steps (max_denoise noise scaling, ancestral and Brownian-tree noise from seed 123) and
// an inpainting run (mask blending around every model call) from the third sigma.
#include <gtest/gtest.h>

#include <c10/core/InferenceMode.h>

#include <fstream>

#include "core/json.h"
#include "sampling/sampler.h"
#include "sampling/schedulers.h"

namespace comfy {
namespace {

const json& recorded() {
  static const json data = [] {
    std::ifstream in(std::string(COMFY_TEST_DATA) + "/sampling/samplers.json");
    return json::parse(in);
  }();
  return data;
}

at::Tensor tensor_of(const json& values, const std::vector<int64_t>& shape) {
  std::vector<float> v;
  for (const auto& x : values) v.push_back(x.get<float>());
  return at::tensor(v, at::kFloat).reshape(shape);
}

std::vector<int64_t> shape() { return recorded()["shape"].get<std::vector<int64_t>>(); }

// The recorder's fake guided model, same formulas in the same op order.
class FakeDenoiser : public Denoiser {
 public:
  explicit FakeDenoiser(at::Tensor target) : target_(std::move(target)), ms_(ModelSampling::discrete(Prediction::Eps)) {}
  at::Tensor operator()(const at::Tensor& x, const at::Tensor& sigma) override {
    ++calls;
    at::Tensor s = sigma.view({sigma.size(0), 1, 1, 1});
    at::Tensor cond = target_ + (x - target_) * ((s + 1).reciprocal() * 0.1);
    if (capture_) uncond_ = target_ * 0.5 + x * ((s + 1).reciprocal() * 0.05);
    return cond;
  }
  const ModelSampling& model_sampling() const override { return ms_; }
  void capture_uncond(bool on) override { capture_ = on; }
  at::Tensor last_uncond_denoised() const override { return uncond_; }
  int calls = 0;

 private:
  at::Tensor target_;
  ModelSampling ms_;
  bool capture_ = false;
  at::Tensor uncond_;
};

void check_run(const std::string& name, const json& run, const at::Tensor& latent, const at::Tensor& mask) {
  c10::InferenceMode guard;  // as the KSampler runs them (deis takes an autograd gradient inside)
  FakeDenoiser model(tensor_of(recorded()["target"], shape()));
  at::Tensor sigmas = tensor_of(run["sigmas"], {static_cast<int64_t>(run["sigmas"].size())});
  at::Tensor noise = tensor_of(recorded()["noise"], shape());
  SamplerRun sr;
  sr.seed = recorded()["seed"].get<uint64_t>();
  int reported = 0;
  sr.callback = [&](const SamplerStep&) { ++reported; };
  auto sampler = sampler_object(name);
  at::Tensor out = sampler->sample(model, sigmas, noise, latent, mask, sr,
                                   Sampler::max_denoise(model.model_sampling(), sigmas));
  at::Tensor ref = tensor_of(run["out"], shape());
  ASSERT_EQ(out.sizes(), ref.sizes());
  float err = (out - ref).abs().max().item<float>();
  float scale = std::max(1.0f, ref.abs().max().item<float>());
  EXPECT_LE(err, 2e-5 * scale) << name << ": max |ours - ComfyUI| = " << err;
  EXPECT_GT(model.calls, 0) << name;
  EXPECT_GT(reported, 0) << name;
}

class SamplerParity : public ::testing::TestWithParam<std::string> {};

TEST_P(SamplerParity, Txt2ImgMatchesComfyUI) {
  check_run(GetParam(), recorded()["samplers"][GetParam()], at::zeros(shape()), at::Tensor());
}

TEST_P(SamplerParity, InpaintingMatchesComfyUI) {
  std::vector<int64_t> s = shape();
  at::Tensor mask = tensor_of(recorded()["mask"], {s[0], 1, s[2], s[3]});
  check_run(GetParam(), recorded()["masked"][GetParam()], tensor_of(recorded()["latent"], s), mask);
}

INSTANTIATE_TEST_SUITE_P(Samplers, SamplerParity, ::testing::ValuesIn(sampler_names()),
                         [](const auto& info) { return info.param; });

TEST(Samplers, AncestralNoiseDependsOnTheSeed) {
  at::Tensor target = tensor_of(recorded()["target"], shape());
  ModelSampling ms = ModelSampling::discrete(Prediction::Eps);
  at::Tensor sigmas = calculate_sigmas(ms, "karras", 4);
  at::Tensor noise = at::zeros(shape());
  auto run = [&](uint64_t seed) {
    FakeDenoiser model(target);
    SamplerRun sr;
    sr.seed = seed;
    return sampler_object("euler_ancestral")->sample(model, sigmas, noise, at::zeros(shape()), at::Tensor(), sr, true);
  };
  EXPECT_TRUE(at::equal(run(1), run(1)));
  EXPECT_FALSE(at::equal(run(1), run(2)));
}

}  // namespace
}  // namespace comfy
