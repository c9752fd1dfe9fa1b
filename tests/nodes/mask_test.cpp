// The mask family (nodes/mask.cpp) against the real ComfyUI 0.8.0: every case recorded by
// tools/oracle/record_masks.py must match bit for bit (these nodes are torch ops in ComfyUI;
// GrowMask is scipy's grey dilation, whose max/min are exact too), or raise the same error.
#include <gtest/gtest.h>

#include "nodes/node_runner.h"

namespace comfy::testing {
namespace {

class RecordedMask : public ::testing::TestWithParam<std::string> {};

TEST_P(RecordedMask, MatchesComfyUI) { check_recorded_case(GetParam(), 0.0); }

INSTANTIATE_TEST_SUITE_P(Mask, RecordedMask, ::testing::ValuesIn(recorded_case_names("mask")), case_test_name);

Value mask(std::vector<float> values, int64_t h, int64_t w) {
  return tensor_value(at::tensor(values).reshape({1, h, w}));
}

TEST(MaskNodes, SolidMaskIsOneBatchOfTheValue) {
  at::Tensor m = run_tensor("SolidMask", {{"value", json(0.25)}, {"width", json(3)}, {"height", json(2)}});
  EXPECT_EQ(m.sizes().vec(), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_TRUE(at::equal(m, at::full({1, 2, 3}, 0.25f)));
}

TEST(MaskNodes, FeatherRightStartsAtColumnZeroAsInComfyUI) {
  // output[:, :, -x] with x = 0 is column 0: a right feather of 2 scales column 0 by 1/2 and the
  // last column by 2/2.
  at::Tensor m = run_tensor("FeatherMask", {{"mask", mask({1, 1, 1, 1}, 1, 4)},
                                            {"left", json(0)}, {"top", json(0)}, {"right", json(2)}, {"bottom", json(0)}});
  EXPECT_TRUE(at::equal(m, at::tensor({0.5f, 1.0f, 1.0f, 1.0f}).reshape({1, 1, 4})));
}

TEST(MaskNodes, CompositeAndRoundsToBooleansThenClamps) {
  at::Tensor m = run_tensor("MaskComposite", {{"destination", mask({0.6f, 0.4f, 1.0f}, 1, 3)},
                                              {"source", mask({0.7f, 0.9f}, 1, 2)},
                                              {"x", json(1)}, {"y", json(0)}, {"operation", json("and")}});
  // column 0 untouched; 0.4 & 0.7 -> 0; 1.0 & 0.9 -> 1
  EXPECT_TRUE(at::allclose(m, at::tensor({0.6f, 0.0f, 1.0f}).reshape({1, 1, 3})));
}

TEST(MaskNodes, GrowWithTaperedCornersMakesADiamond) {
  std::vector<float> v(25, 0.0f);
  v[12] = 1.0f;
  at::Tensor m = run_tensor("GrowMask", {{"mask", mask(v, 5, 5)}, {"expand", json(2)}, {"tapered_corners", json(true)}});
  for (int y = 0; y < 5; ++y)
    for (int x = 0; x < 5; ++x)
      EXPECT_EQ(m[0][y][x].item<float>(), std::abs(y - 2) + std::abs(x - 2) <= 2 ? 1.0f : 0.0f) << y << "," << x;
}

TEST(MaskNodes, AlphaOfAnRgbImageIsAnIndexError) {
  try {
    run_tensor("ImageToMask", {{"image", tensor_value(at::zeros({1, 2, 2, 3}))}, {"channel", json("alpha")}});
    FAIL() << "expected IndexError";
  } catch (const ComfyError& e) {
    EXPECT_EQ(e.type(), "IndexError");
    EXPECT_STREQ(e.what(), "index 3 is out of bounds for dimension 3 with size 3");
  }
}

TEST(MaskNodes, AStringWhereAMaskBelongsIsATypeError) {
  try {
    run_tensor("InvertMask", {{"mask", json("not a mask")}});
    FAIL() << "expected TypeError";
  } catch (const ComfyError& e) {
    EXPECT_EQ(e.type(), "TypeError");
  }
}

}  // namespace
}  // namespace comfy::testing
