// BaseModel.apply_model on the tiny SD1.5 checkpoint against ComfyUI's recorded UNet stages
// (tests/fixtures/reference/stages/unet_*.safetensors): denoised = x - eps * sigma, with the
// timestep from the log-sigma table.
#include <gtest/gtest.h>

#include <c10/core/InferenceMode.h>

#include <fstream>

#include "core/json.h"
#include "models/checkpoint.h"
#include "support/safetensors_read.h"

namespace comfy::testing {
namespace {

const std::string kRef = std::string(COMFY_TEST_DATA) + "/reference/";

const json& manifest() {
  static const json m = [] {
    std::ifstream f(kRef + "manifest.json");
    return json::parse(f);
  }();
  return m;
}

std::vector<std::string> unet_cases() {
  std::vector<std::string> ids;
  for (auto& c : manifest()["cases"])
    if (c["kind"] == "unet") ids.push_back(c["id"].get<std::string>());
  return ids;
}

const json& find_case(const std::string& id) {
  for (auto& c : manifest()["cases"])
    if (c["id"] == id) return c;
  throw std::runtime_error("no case " + id);
}

class DiffusionModelStage : public ::testing::TestWithParam<std::string> {};

TEST_P(DiffusionModelStage, DenoisedAndTimestepMatchComfyUI) {
  c10::InferenceMode guard;
  const json& c = find_case(GetParam());
  CheckpointOptions options;
  options.output_clip = false;
  options.output_vae = false;
  auto model = load_checkpoint(std::string(COMFY_TEST_DATA) + "/models/checkpoints/" +
                                   c["inputs"]["checkpoint"].get<std::string>(), options).model;
  ASSERT_TRUE(model);
  auto t = read_safetensors_f32(kRef + c["files"]["tensors"].get<std::string>());
  at::Tensor x = t.at("x"), sigma = t.at("sigma").reshape({-1});
  if (sigma.size(0) == 1 && x.size(0) > 1) sigma = sigma.expand({x.size(0)}).contiguous();
  ASSERT_EQ(x.dim(), 4) << x.sizes();
  ASSERT_EQ(sigma.size(0), x.size(0)) << sigma.sizes() << " vs " << x.sizes();
  ModelConds conds;
  conds.c_crossattn = t.at("context");
  at::Tensor denoised = model->apply_model(x, sigma, conds);
  at::Tensor timestep = model->sampling.timestep(sigma);
  for (auto& cmp : c["compare"]) {
    std::string name = cmp["tensor"].get<std::string>();
    double atol = cmp["atol"].get<double>();
    if (name == "denoised") {
      ASSERT_EQ(denoised.sizes(), t.at("denoised").sizes());
      EXPECT_LE((denoised - t.at("denoised")).abs().max().item<double>(), atol);
    } else if (name == "timestep") {
      EXPECT_LE((timestep - t.at("timestep").reshape({-1})).abs().max().item<double>(), atol);
    }
    // "eps" is the UNet's own output: tests/nn compares it.
  }
}

INSTANTIATE_TEST_SUITE_P(Reference, DiffusionModelStage, ::testing::ValuesIn(unet_cases()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace comfy::testing
