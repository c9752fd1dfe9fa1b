// The post-processing family (nodes/post_processing.cpp) against the real ComfyUI 0.8.0 (cases
// recorded by tools/oracle/record_masks.py). Every case is bit-exact: ImageBlend, ImageBlur,
// ImageSharpen and ImageScaleToTotalPixels are the same torch ops (conv2d included, on this
// libtorch build), and ImageQuantize reproduces Pillow 9.4's median cut, palette mapping and
// dithering (also checked on 900 random images against Pillow itself).
#include <gtest/gtest.h>

#include "nodes/node_runner.h"

namespace comfy::testing {
namespace {

class RecordedPostProcessing : public ::testing::TestWithParam<std::string> {};

TEST_P(RecordedPostProcessing, MatchesComfyUI) { check_recorded_case(GetParam(), 0.0); }

INSTANTIATE_TEST_SUITE_P(PostProcessing, RecordedPostProcessing,
                         ::testing::ValuesIn(recorded_case_names("post_processing")), case_test_name);

TEST(PostProcessingNodes, BlendDifferenceIsClampedAtZero) {
  Value a = tensor_value(at::full({1, 1, 1, 3}, 0.25f)), b = tensor_value(at::full({1, 1, 1, 3}, 0.75f));
  at::Tensor out = run_tensor("ImageBlend", {{"image1", a}, {"image2", b}, {"blend_factor", json(1.0)},
                                             {"blend_mode", json("difference")}});
  EXPECT_TRUE(at::equal(out, at::zeros({1, 1, 1, 3})));
}

TEST(PostProcessingNodes, QuantizeKeepsPillowsBlackPaddingEntries) {
  // One colour: the palette is the mean (0 + 255) / 2 rounded half up = 128, padded with black
  // to 256 entries as Pillow 9.4 does, so the black pixel maps to a padding entry and stays black.
  at::Tensor img = at::tensor({0.0f, 0.0f, 0.0f, 1.0f, 1.0f, 1.0f}).reshape({1, 1, 2, 3});
  at::Tensor out = run_tensor("ImageQuantize", {{"image", tensor_value(img)}, {"colors", json(1)}, {"dither", json("none")}});
  EXPECT_TRUE(at::equal(out, at::tensor({0.0f, 0.0f, 0.0f, 128.0f, 128.0f, 128.0f}).reshape({1, 1, 2, 3}) / 255));
}

TEST(PostProcessingNodes, SharpenWithZeroAlphaKeepsTheImage) {
  at::Tensor img = at::rand({1, 8, 8, 3});
  at::Tensor out = run_tensor("ImageSharpen", {{"image", tensor_value(img)}, {"sharpen_radius", json(2)},
                                               {"sigma", json(1.0)}, {"alpha", json(0.0)}});
  EXPECT_TRUE(at::allclose(out, img));
}

}  // namespace
}  // namespace comfy::testing
