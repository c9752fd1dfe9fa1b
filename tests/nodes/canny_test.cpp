// The Canny node's detector against an independent NumPy/SciPy implementation of the algorithm
// kornia publishes (tools/oracle/canny_reference.py; kornia itself is not available to the
// oracle): tests/fixtures/canny/scene_64x64_edges.safetensors holds the input image and the edges
// for three threshold pairs.
#include <gtest/gtest.h>

#include <c10/core/InferenceMode.h>

#include "core/error.h"
#include "nodes/canny.h"
#include "support/safetensors_read.h"

namespace comfy::testing {
namespace {

const std::string kRef = std::string(COMFY_TEST_DATA) + "/canny/scene_64x64_edges.safetensors";

void expect_edges(const char* low, const char* high) {
  c10::InferenceMode guard;
  auto ref = read_safetensors_f32(kRef);
  at::Tensor image = ref.at("image").movedim(-1, 1);
  at::Tensor expected = ref.at(std::string("edges_") + low + "_" + high);
  at::Tensor edges = kornia_canny(image, std::stod(low), std::stod(high));
  ASSERT_EQ(edges.sizes(), (std::vector<int64_t>{1, 1, 64, 64}));
  at::Tensor ours = edges.squeeze(1);
  const int64_t differ = (ours != expected).sum().item<int64_t>();
  const int64_t count = expected.sum().item<int64_t>();
  std::cout << "  low " << low << " high " << high << ": " << count << " edge pixels, " << differ << " differ\n";
  EXPECT_GT(count, 50);  // the scene has edges; an all-zero output would not pass
  EXPECT_EQ(differ, 0);
  EXPECT_TRUE(((ours == 0) | (ours == 1)).all().item<bool>());
}

TEST(Canny, DefaultThresholdsMatchReference) { expect_edges("0.4", "0.8"); }
TEST(Canny, LowThresholdsMatchReference) { expect_edges("0.1", "0.3"); }
TEST(Canny, WideHysteresisMatchesReference) { expect_edges("0.05", "0.5"); }

TEST(Canny, LowAboveHighIsAnError) {
  c10::InferenceMode guard;
  EXPECT_THROW(kornia_canny(at::zeros({1, 3, 8, 8}), 0.8, 0.4), ComfyError);
}

}  // namespace
}  // namespace comfy::testing
