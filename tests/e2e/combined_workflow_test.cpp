// The README's "models that combine" workflow (tests/fixtures/workflows/lora_controlnet_upscale.json):
// a checkpoint with a LoRA, a ControlNet steered by Canny edges, and an ESRGAN upscale at the end,
// run through validation and the executor on the tiny fixture models. Each part must matter: the
// picture changes when the LoRA or the ControlNet is switched off, and the upscaler makes it 4x.
#include <gtest/gtest.h>

#include <fstream>

#include "io/image.h"
#include "support/model_engine.h"

namespace comfy::testing {
namespace {

const fs::path kFixtures = COMFY_TEST_DATA;

json workflow() {
  std::ifstream f(kFixtures / "workflows" / "lora_controlnet_upscale.json");
  return json::parse(f);
}

// The saved picture's pixels and size.
struct Picture {
  int64_t width = 0, height = 0;
  std::vector<uint8_t> pixels;
};

Picture run(json prompt) {
  ModelEngine engine;
  engine.folders.add_model_folder_path("controlnet", kFixtures / "controlnet" / "models", true);
  engine.folders.set_input_directory(kFixtures / "controlnet" / "input");
  ExecutionResult r = engine.run(std::move(prompt));
  if (!r.success) return {};
  io::DecodedImage d = io::read_image(engine.saved(r.outputs.at("14")["images"].at(0)));
  const io::Frame& f = d.frames.at(0);
  return {f.width, f.height, f.pixels};
}

TEST(CombinedWorkflow, LoraControlNetAndUpscaleEachMatter) {
  Picture full = run(workflow());
  ASSERT_EQ(full.width, 256);
  ASSERT_EQ(full.height, 256);

  json no_lora = workflow();
  no_lora["2"]["inputs"]["strength_model"] = 0.0;
  no_lora["2"]["inputs"]["strength_clip"] = 0.0;
  Picture a = run(no_lora);
  ASSERT_EQ(a.pixels.size(), full.pixels.size());
  EXPECT_NE(a.pixels, full.pixels) << "the LoRA changed nothing";

  json no_cn = workflow();
  no_cn["8"]["inputs"]["strength"] = 0.0;
  Picture b = run(no_cn);
  ASSERT_EQ(b.pixels.size(), full.pixels.size());
  EXPECT_NE(b.pixels, full.pixels) << "the ControlNet changed nothing";
}

}  // namespace
}  // namespace comfy::testing
