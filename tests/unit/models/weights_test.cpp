#include <gtest/gtest.h>

#include <filesystem>

#include "core/error.h"
#include "io/safetensors.h"
#include "models/weights.h"

namespace comfy {
namespace {

std::shared_ptr<const WeightSet> small_set() {
  std::unordered_map<std::string, at::Tensor> t;
  t["a.weight"] = at::arange(6, at::kFloat).reshape({2, 3}).to(at::kHalf);
  t["a.bias"] = at::ones({2}, at::kFloat);
  t["b.weight"] = at::full({2}, 3.0, at::kFloat);
  return WeightSet::from_tensors(std::move(t));
}

TEST(WeightSet, GetCastsToTheComputeDtypeAndRawKeepsTheStoredOne) {
  auto set = small_set();
  EXPECT_EQ(set->raw("a.weight").scalar_type(), at::kHalf);
  at::Tensor w = set->get("a.weight");
  EXPECT_EQ(w.scalar_type(), at::kFloat);
  EXPECT_TRUE(at::equal(w, at::arange(6, at::kFloat).reshape({2, 3})));
}

TEST(WeightSet, UnknownKeyIsAKeyErrorNamingIt) {
  auto set = small_set();
  try {
    set->get("missing.weight");
    FAIL();
  } catch (const ComfyError& e) {
    EXPECT_NE(std::string(e.what()).find("missing.weight"), std::string::npos);
  }
}

TEST(WeightSet, PatchesMakeANewSetAndLeaveTheOriginalUntouched) {
  auto set = small_set();
  std::map<std::string, std::vector<WeightPatch>> patches;
  patches["b.weight"].push_back({[](at::Tensor w) { return w * 2; }});
  auto patched = set->with_patches(patches);
  EXPECT_TRUE(at::equal(patched->get("b.weight"), at::full({2}, 6.0)));
  EXPECT_TRUE(at::equal(set->get("b.weight"), at::full({2}, 3.0)));
  // A second layer applies after the first.
  std::map<std::string, std::vector<WeightPatch>> more;
  more["b.weight"].push_back({[](at::Tensor w) { return w + 1; }});
  EXPECT_TRUE(at::equal(patched->with_patches(more)->get("b.weight"), at::full({2}, 7.0)));
}

TEST(WeightSet, PatchedWeightsRoundToThePatchDtype) {
  auto set = small_set()->with_patch_dtype(at::kHalf);
  std::map<std::string, std::vector<WeightPatch>> patches;
  patches["b.weight"].push_back({[](at::Tensor w) { return w + 1e-4; }});
  // 3 + 1e-4 is not representable in fp16: the patched weight rounds back to 3.
  EXPECT_TRUE(at::equal(set->with_patches(patches)->get("b.weight"), at::full({2}, 3.0)));
  auto f32 = small_set()->with_patch_dtype(at::kFloat)->with_patches(patches);
  EXPECT_FALSE(at::equal(f32->get("b.weight"), at::full({2}, 3.0)));
}

TEST(WeightSet, PrefixViewsAndRenames) {
  auto set = small_set();
  Weights a(set, "a.");
  EXPECT_TRUE(a.has("bias"));
  EXPECT_EQ(a.keys(), (std::vector<std::string>{"bias", "weight"}));
  EXPECT_EQ(a.shape("weight"), (std::vector<int64_t>{2, 3}));
  auto renamed = set->renamed_prefix("a.", "x.");
  EXPECT_TRUE(renamed->has("x.weight"));
  EXPECT_FALSE(renamed->has("b.weight"));
}

TEST(WeightSet, FileTensorsAreViewsIntoTheMapping) {
  auto file = SafetensorsFile::open(std::filesystem::path(COMFY_TEST_DATA) / "models/vae/tiny_vae.safetensors");
  auto set = WeightSet::from_file(file);
  const std::string key = "decoder.conv_in.weight";
  at::Tensor raw = set->raw(key);
  const auto* p = static_cast<const uint8_t*>(raw.data_ptr());
  EXPECT_GE(p, file->mapped_data());
  EXPECT_LT(p, file->mapped_data() + file->mapped_size());
  EXPECT_EQ(set->keys().size(), file->keys().size());
}

}  // namespace
}  // namespace comfy
