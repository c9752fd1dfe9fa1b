// Model sampling tables, the nine schedulers and prepare_noise against the tensors recorded from
// ComfyUI 0.8.0 (reference cases "sigmas" and "noise": allclose rtol 1e-5 atol 1e-6, and max_abs
// 1e-6).
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>

#include "core/error.h"
#include "sampling/model_sampling.h"
#include "sampling/noise.h"
#include "sampling/sampler.h"
#include "sampling/schedulers.h"
#include "support/safetensors_read.h"

namespace comfy {
namespace {

const std::map<std::string, at::Tensor>& sigma_refs() {
  static const auto refs =
      testing::read_safetensors_f32(std::string(COMFY_TEST_DATA) + "/reference/stages/sigmas.safetensors");
  return refs;
}

const std::map<std::string, at::Tensor>& noise_refs() {
  static const auto refs =
      testing::read_safetensors_f32(std::string(COMFY_TEST_DATA) + "/reference/stages/noise.safetensors");
  return refs;
}

void expect_allclose(const at::Tensor& ours, const at::Tensor& ref, const std::string& what) {
  ASSERT_EQ(ours.sizes(), ref.sizes()) << what;
  ASSERT_EQ(ours.scalar_type(), at::kFloat) << what;
  // NaN where ComfyUI has NaN (kl_optimal with one step divides by zero).
  EXPECT_TRUE(at::equal(at::isnan(ours), at::isnan(ref))) << what;
  at::Tensor finite = ~at::isnan(ref);
  EXPECT_TRUE(at::allclose(ours.index({finite}), ref.index({finite}), 1e-5, 1e-6))
      << what << "\nours " << ours << "\nref " << ref;
}

TEST(ModelSampling, TablesMatchComfyUI) {
  ModelSampling ms = ModelSampling::discrete(Prediction::Eps);
  expect_allclose(ms.sigmas(), sigma_refs().at("model_sampling_sigmas"), "sigmas");
  expect_allclose(ms.log_sigmas(), sigma_refs().at("model_sampling_log_sigmas"), "log_sigmas");
  EXPECT_FLOAT_EQ(ms.sigma_max(), sigma_refs().at("model_sampling_sigmas")[-1].item<float>());
}

TEST(ModelSampling, TimestepIsTheNearestTableIndexAndSigmaInterpolates) {
  ModelSampling ms = ModelSampling::discrete(Prediction::Eps);
  EXPECT_EQ(ms.timestep(ms.sigmas()[999]).item<int64_t>(), 999);
  EXPECT_EQ(ms.timestep(at::scalar_tensor(1.0f)).item<int64_t>(), 354);  // the UNet case "sigma 1"
  float s10 = ms.sigmas()[10].item<float>(), s11 = ms.sigmas()[11].item<float>();
  float mid = ms.sigma(at::scalar_tensor(10.5f)).item<float>();
  EXPECT_NEAR(mid, std::sqrt(s10 * s11), 1e-6);
  EXPECT_EQ(ms.percent_to_sigma(0.0), 999999999.9);
  EXPECT_EQ(ms.percent_to_sigma(1.0), 0.0);
  EXPECT_FLOAT_EQ(ms.percent_to_sigma(1.0 - 10.0 / 999.0), s10);
}

TEST(ModelSampling, EpsAndVDenoiseAndNoiseScaling) {
  ModelSampling eps = ModelSampling::discrete(Prediction::Eps);
  ModelSampling v = ModelSampling::discrete(Prediction::V);
  at::Tensor x = at::full({1, 1, 1, 2}, 3.0f), out = at::full({1, 1, 1, 2}, 0.5f);
  at::Tensor sigma = at::full({1}, 2.0f);
  EXPECT_NEAR(eps.calculate_input(sigma, x)[0][0][0][0].item<float>(), 3.0 / std::sqrt(5.0), 1e-6);
  EXPECT_NEAR(eps.calculate_denoised(sigma, out, x)[0][0][0][0].item<float>(), 3.0 - 1.0, 1e-6);
  EXPECT_NEAR(v.calculate_denoised(sigma, out, x)[0][0][0][0].item<float>(), 3.0 / 5.0 - 0.5 * 2.0 / std::sqrt(5.0), 1e-6);
  at::Tensor latent = at::full({1, 1, 1, 2}, 1.0f);
  EXPECT_NEAR(eps.noise_scaling(sigma, out, latent, false)[0][0][0][0].item<float>(), 0.5 * 2 + 1, 1e-6);
  EXPECT_NEAR(eps.noise_scaling(sigma, out, latent, true)[0][0][0][0].item<float>(), 0.5 * std::sqrt(5.0) + 1, 1e-6);
}

class SchedulerParity : public ::testing::TestWithParam<std::string> {};

TEST_P(SchedulerParity, MatchesComfyUIForOneFourAndTenSteps) {
  ModelSampling ms = ModelSampling::discrete(Prediction::Eps);
  for (int64_t steps : {1, 4, 10}) {
    std::string key = GetParam() + "_" + std::to_string(steps);
    expect_allclose(calculate_sigmas(ms, GetParam(), steps), sigma_refs().at(key), key);
  }
}

INSTANTIATE_TEST_SUITE_P(Schedulers, SchedulerParity, ::testing::ValuesIn(scheduler_names()),
                         [](const auto& info) { return info.param; });

TEST(KSamplerSigmas, DenoiseAndDiscardedPenultimateSigmaMatchComfyUI) {
  ModelSampling ms = ModelSampling::discrete(Prediction::Eps);
  expect_allclose(ksampler_sigmas(ms, "euler", "normal", 10, 0.6), sigma_refs().at("ksampler_euler_normal_10_denoise0.6"),
                  "euler normal 10 denoise 0.6");
  expect_allclose(ksampler_sigmas(ms, "euler", "karras", 4, 0.5), sigma_refs().at("ksampler_euler_karras_4_denoise0.5"),
                  "euler karras 4 denoise 0.5");
  expect_allclose(ksampler_sigmas(ms, "dpm_2", "normal", 4), sigma_refs().at("ksampler_dpm_2_normal_4"), "dpm_2");
  expect_allclose(ksampler_sigmas(ms, "uni_pc", "karras", 4), sigma_refs().at("ksampler_uni_pc_karras_4"), "uni_pc");
  EXPECT_EQ(ksampler_sigmas(ms, "euler", "normal", 10, 0.0).numel(), 0);
}

TEST(Schedulers, UnknownNameIsAValueError) {
  ModelSampling ms = ModelSampling::discrete(Prediction::Eps);
  try {
    calculate_sigmas(ms, "nope", 4);
    FAIL() << "no error";
  } catch (const ComfyError& e) {
    EXPECT_EQ(e.type(), "ValueError");
  }
}

TEST(Schedulers, BetaQuantileInvertsTheIncompleteBetaFunction) {
  // scipy.stats.beta.ppf(0.25, 0.6, 0.6) = 0.1236372... ; symmetric shape gives ppf(0.5) = 0.5.
  EXPECT_NEAR(beta_ppf(0.5, 0.6, 0.6), 0.5, 1e-14);
  for (double p : {0.01, 0.25, 0.7, 0.99})
    EXPECT_NEAR(regularized_incomplete_beta(beta_ppf(p, 0.6, 0.6), 0.6, 0.6), p, 1e-13);
  // I_x(1,1) = x and I_x(2,1) = x².
  EXPECT_NEAR(regularized_incomplete_beta(0.3, 1, 1), 0.3, 1e-14);
  EXPECT_NEAR(regularized_incomplete_beta(0.3, 2, 1), 0.09, 1e-14);
}

TEST(NoiseParity, PrepareNoiseMatchesComfyUIForEverySeedAndBatchIndex) {
  struct Case {
    std::string key;
    uint64_t seed;
    std::vector<int64_t> shape;
    std::optional<std::vector<int64_t>> batch_index;
  };
  const std::vector<Case> cases = {
      {"seed_0", 0, {2, 4, 8, 8}, std::nullopt},
      {"seed_42", 42, {2, 4, 8, 8}, std::nullopt},
      {"seed_5", 5, {2, 4, 8, 8}, std::nullopt},
      {"seed_4294967301", 4294967301ULL, {2, 4, 8, 8}, std::nullopt},
      {"seed_9223372036854775807", 9223372036854775807ULL, {2, 4, 8, 8}, std::nullopt},
      {"seed_18446744073709551615", 18446744073709551615ULL, {2, 4, 8, 8}, std::nullopt},
      {"seed_42_1x4x8x8", 42, {1, 4, 8, 8}, std::nullopt},
      {"seed_42_batch_index_3_1", 42, {2, 4, 8, 8}, std::vector<int64_t>{3, 1}},
      {"seed_42_batch_index_0_2_2", 42, {3, 4, 8, 8}, std::vector<int64_t>{0, 2, 2}},
  };
  for (const auto& c : cases) {
    at::Tensor noise = prepare_noise(at::zeros(c.shape), c.seed, c.batch_index);
    const at::Tensor& ref = noise_refs().at(c.key);
    ASSERT_EQ(noise.sizes(), ref.sizes()) << c.key;
    EXPECT_LE((noise - ref).abs().max().item<float>(), 1e-6) << c.key;
  }
  // Only the low 32 bits of the seed count (2^32 + 5 draws what 5 draws).
  EXPECT_TRUE(at::equal(noise_refs().at("seed_4294967301"), noise_refs().at("seed_5")));
}

TEST(SamplerNames, FollowComfyUIOrderAndDiscardSet) {
  const auto& names = sampler_names();
  ASSERT_EQ(names.size(), 44u);
  EXPECT_EQ(names.front(), "euler");
  EXPECT_EQ(names[names.size() - 3], "ddim");
  EXPECT_EQ(names.back(), "uni_pc_bh2");
  for (const auto& n : names) EXPECT_NO_THROW(sampler_object(n)) << n;
  EXPECT_TRUE(discards_penultimate_sigma("dpm_2_ancestral"));
  EXPECT_FALSE(discards_penultimate_sigma("euler"));
  EXPECT_THROW(sampler_object("nope"), ComfyError);
}

}  // namespace
}  // namespace comfy
