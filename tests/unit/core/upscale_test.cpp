// common_upscale on tensors no node reaches directly (bislerp, lanczos on RGBA, 5-D video
// samples), against comfy.utils.common_upscale run in-process by tools/oracle/record_images.py.
#include "core/upscale.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "support/safetensors_read.h"

namespace comfy {
namespace {

const std::map<std::string, at::Tensor>& direct() {
  static const auto t = testing::read_safetensors_f32(COMFY_TEST_DATA "/images/upscale_direct.safetensors");
  return t;
}

double diff(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

TEST(CommonUpscale, BislerpEqualsComfyUI) {
  at::Tensor up = common_upscale(direct().at("latent"), 11, 9, "bislerp", "disabled");
  ASSERT_EQ(up.sizes(), direct().at("bislerp_up").sizes());
  EXPECT_EQ(diff(up, direct().at("bislerp_up")), 0.0);
  at::Tensor down = common_upscale(direct().at("latent"), 3, 4, "bislerp", "center");
  ASSERT_EQ(down.sizes(), direct().at("bislerp_down").sizes());
  EXPECT_EQ(diff(down, direct().at("bislerp_down")), 0.0);
}

TEST(CommonUpscale, LanczosEqualsPillow) {
  at::Tensor rgba = common_upscale(direct().at("rgba"), 17, 6, "lanczos", "disabled");
  ASSERT_EQ(rgba.sizes(), direct().at("lanczos_rgba").sizes());
  EXPECT_EQ(diff(rgba, direct().at("lanczos_rgba")), 0.0);
  at::Tensor rgb = common_upscale(direct().at("rgb"), 23, 15, "lanczos", "center");
  ASSERT_EQ(rgb.sizes(), direct().at("lanczos_rgb").sizes());
  EXPECT_EQ(diff(rgb, direct().at("lanczos_rgb")), 0.0);
}

TEST(CommonUpscale, VideoSamplesScaleFrameByFrame) {
  at::Tensor out = common_upscale(direct().at("video"), 7, 6, "bilinear", "disabled");
  ASSERT_EQ(out.sizes(), direct().at("video_bilinear").sizes());
  EXPECT_EQ(diff(out, direct().at("video_bilinear")), 0.0);
}

TEST(CommonUpscale, BadSizesAreErrors) {
  at::Tensor x = at::zeros({1, 3, 4, 4});
  EXPECT_THROW(common_upscale(x, 0, 4, "bilinear", "disabled"), ComfyError);
  EXPECT_THROW(common_upscale(x, 4, 4, "cubic-ish", "disabled"), ComfyError);
  EXPECT_THROW(common_upscale(at::zeros({1, 3, 4, 4}), 1 << 20, 1 << 20, "bilinear", "disabled"), ComfyError);
}

}  // namespace
}  // namespace comfy
