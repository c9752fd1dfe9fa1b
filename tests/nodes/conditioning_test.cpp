// The conditioning nodes (nodes/conditioning.cpp) against ComfyUI's semantics (nodes.py,
// node_helpers.conditioning_set_values): list concatenation, token concatenation, weighted
// averages with ComfyUI's truncation/zero padding, and the options each node sets.
#include <gtest/gtest.h>

#include <atomic>

#include "core/error.h"
#include "core/tensor.h"
#include "graph/execution_context.h"
#include "graph/registry.h"
#include "models/conditioning.h"
#include "nodes/all.h"

namespace comfy {
namespace {

const Registry& registry() {
  static const Registry r = [] {
    Registry reg;
    register_conditioning(reg);
    return reg;
  }();
  return r;
}

const Conditioning& run(const std::string& class_type, const std::map<std::string, Value>& inputs) {
  static std::vector<Value> keep;  // results outlive the call
  const NodeDef* def = registry().find(class_type);
  if (!def) throw std::runtime_error("no node " + class_type);
  Services services;
  std::atomic<bool> interrupt{false};
  ExecutionContext ctx(services, "prompt", "1", &interrupt, [](double, double) {});
  NodeInputs in;
  for (const auto& [name, value] : inputs) in.values[name] = {value};
  keep.push_back(def->function(ctx, in).result.at(0));
  return conditioning_of(keep.back());
}

CondEntry entry(int64_t tokens, float value, bool pooled = true, int64_t width = 4) {
  CondEntry e;
  e.cond = at::full({1, tokens, width}, value);
  if (pooled) e.options.pooled_output = at::full({1, width}, value * 10);
  return e;
}

Value cond(std::vector<CondEntry> entries) {
  Conditioning c;
  c.entries = std::move(entries);
  return conditioning_value(std::move(c));
}

TEST(ConditioningNodes, CombineIsTheTwoListsOneAfterTheOther) {
  const Conditioning& out = run("ConditioningCombine", {{"conditioning_1", cond({entry(77, 1), entry(77, 2)})},
                                                        {"conditioning_2", cond({entry(154, 3)})}});
  ASSERT_EQ(out.entries.size(), 3u);
  EXPECT_EQ(out.entries[0].cond[0][0][0].item<float>(), 1);
  EXPECT_EQ(out.entries[1].cond[0][0][0].item<float>(), 2);
  EXPECT_EQ(out.entries[2].cond.size(1), 154);
}

TEST(ConditioningNodes, ConcatAppendsTheFirstFromCondToEveryToCondAndKeepsItsOptions) {
  CondEntry to = entry(77, 1);
  to.options.strength = 0.5;
  const Conditioning& out = run("ConditioningConcat", {{"conditioning_to", cond({to, entry(154, 2, false)})},
                                                       {"conditioning_from", cond({entry(77, 5), entry(77, 9)})}});
  ASSERT_EQ(out.entries.size(), 2u);
  EXPECT_EQ(out.entries[0].cond.sizes().vec(), (std::vector<int64_t>{1, 154, 4}));
  EXPECT_EQ(out.entries[1].cond.sizes().vec(), (std::vector<int64_t>{1, 231, 4}));
  EXPECT_EQ(out.entries[0].cond[0][76][0].item<float>(), 1);
  EXPECT_EQ(out.entries[0].cond[0][77][0].item<float>(), 5);  // only the first from entry
  EXPECT_EQ(out.entries[0].options.strength, 0.5);
  EXPECT_TRUE(at::equal(out.entries[0].options.pooled_output, to.options.pooled_output));  // to's, not from's
  EXPECT_FALSE(out.entries[1].options.pooled_output.defined());
}

TEST(ConditioningNodes, AverageMixesCondsAndPooledByStrength) {
  const Conditioning& out = run("ConditioningAverage", {{"conditioning_to", cond({entry(77, 1)})},
                                                        {"conditioning_from", cond({entry(77, 3)})},
                                                        {"conditioning_to_strength", json(0.25)}});
  ASSERT_EQ(out.entries.size(), 1u);
  EXPECT_TRUE(at::allclose(out.entries[0].cond, at::full({1, 77, 4}, 0.25f * 1 + 0.75f * 3)));
  EXPECT_TRUE(at::allclose(out.entries[0].options.pooled_output, at::full({1, 4}, 0.25f * 10 + 0.75f * 30)));
}

TEST(ConditioningNodes, AverageTruncatesALongerFromAndZeroPadsAShorterOne) {
  const Conditioning& shorter = run("ConditioningAverage", {{"conditioning_to", cond({entry(154, 1)})},
                                                            {"conditioning_from", cond({entry(77, 3)})},
                                                            {"conditioning_to_strength", json(0.5)}});
  const at::Tensor& s = shorter.entries[0].cond;
  ASSERT_EQ(s.sizes().vec(), (std::vector<int64_t>{1, 154, 4}));
  EXPECT_FLOAT_EQ(s[0][0][0].item<float>(), 2.0f);    // (1 + 3) / 2
  EXPECT_FLOAT_EQ(s[0][100][0].item<float>(), 0.5f);  // (1 + 0) / 2

  const Conditioning& longer = run("ConditioningAverage", {{"conditioning_to", cond({entry(77, 1)})},
                                                           {"conditioning_from", cond({entry(154, 3)})},
                                                           {"conditioning_to_strength", json(0.5)}});
  EXPECT_EQ(longer.entries[0].cond.size(1), 77);
}

TEST(ConditioningNodes, AverageWithoutPooledOnTheToSideTakesFromsPooled) {
  const Conditioning& out = run("ConditioningAverage", {{"conditioning_to", cond({entry(77, 1, false)})},
                                                        {"conditioning_from", cond({entry(77, 3)})},
                                                        {"conditioning_to_strength", json(0.25)}});
  // pooled_output_to defaults to pooled_output_from: 0.25*30 + 0.75*30.
  EXPECT_TRUE(at::allclose(out.entries[0].options.pooled_output, at::full({1, 4}, 30.0f)));
  const Conditioning& none = run("ConditioningAverage", {{"conditioning_to", cond({entry(77, 1)})},
                                                         {"conditioning_from", cond({entry(77, 3, false)})},
                                                         {"conditioning_to_strength", json(0.25)}});
  EXPECT_TRUE(at::equal(none.entries[0].options.pooled_output, at::full({1, 4}, 10.0f)));  // kept as it was
}

TEST(ConditioningNodes, AverageOrConcatWithAnEmptyFromIsAnIndexError) {
  for (const char* node : {"ConditioningAverage", "ConditioningConcat"}) {
    std::map<std::string, Value> in{{"conditioning_to", cond({entry(77, 1)})}, {"conditioning_from", cond({})}};
    if (std::string(node) == "ConditioningAverage") in["conditioning_to_strength"] = json(0.5);
    try {
      run(node, in);
      ADD_FAILURE() << node;
    } catch (const ComfyError& e) {
      EXPECT_EQ(e.type(), "IndexError");
    }
  }
}

TEST(ConditioningNodes, SetAreaStoresLatentUnitsWithFloorDivision) {
  Value in = cond({entry(77, 1), entry(77, 2)});
  const Conditioning& out = run("ConditioningSetArea", {{"conditioning", in}, {"width", json(132)}, {"height", json(64)},
                                                        {"x", json(64)}, {"y", json(15)}, {"strength", json(0.8)}});
  ASSERT_EQ(out.entries.size(), 2u);
  for (const auto& e : out.entries) {
    ASSERT_TRUE(e.options.area.has_value());
    EXPECT_FALSE(e.options.area->percentage);
    EXPECT_EQ(e.options.area->hwyx, (std::array<double, 4>{8, 16, 1, 8}));  // (h//8, w//8, y//8, x//8)
    EXPECT_EQ(e.options.strength, 0.8);
    EXPECT_EQ(e.options.set_area_to_bounds, false);
  }
  // The input is not changed.
  EXPECT_FALSE(conditioning_of(in).entries[0].options.area.has_value());
}

TEST(ConditioningNodes, SetAreaPercentageStoresFractionsInHWYXOrder) {
  const Conditioning& out =
      run("ConditioningSetAreaPercentage", {{"conditioning", cond({entry(77, 1)})}, {"width", json(0.5)},
                                            {"height", json(0.25)}, {"x", json(0.1)}, {"y", json(0.2)}, {"strength", json(2.0)}});
  const auto& o = out.entries[0].options;
  ASSERT_TRUE(o.area.has_value());
  EXPECT_TRUE(o.area->percentage);
  EXPECT_EQ(o.area->hwyx, (std::array<double, 4>{0.25, 0.5, 0.2, 0.1}));
  EXPECT_EQ(o.strength, 2.0);
  EXPECT_EQ(o.set_area_to_bounds, false);
}

TEST(ConditioningNodes, SetAreaStrengthOnlySetsStrength) {
  CondEntry e = entry(77, 1);
  e.options.area = CondArea{false, {1, 2, 3, 4}};
  const Conditioning& out = run("ConditioningSetAreaStrength", {{"conditioning", cond({e})}, {"strength", json(3.5)}});
  EXPECT_EQ(out.entries[0].options.strength, 3.5);
  EXPECT_EQ(out.entries[0].options.area->hwyx, (std::array<double, 4>{1, 2, 3, 4}));
  EXPECT_FALSE(out.entries[0].options.set_area_to_bounds.has_value());
}

TEST(ConditioningNodes, SetMaskAddsABatchDimensionAndMapsTheAreaOption) {
  at::Tensor mask = at::rand({8, 8});
  const Conditioning& dflt = run("ConditioningSetMask", {{"conditioning", cond({entry(77, 1)})}, {"mask", tensor_value(mask)},
                                                         {"strength", json(0.7)}, {"set_cond_area", json("default")}});
  const auto& o = dflt.entries[0].options;
  EXPECT_EQ(o.mask.sizes().vec(), (std::vector<int64_t>{1, 8, 8}));
  EXPECT_TRUE(at::equal(o.mask[0], mask));
  EXPECT_EQ(o.set_area_to_bounds, false);
  EXPECT_EQ(o.mask_strength, 0.7);
  EXPECT_FALSE(o.strength.has_value());
  const Conditioning& bounds = run("ConditioningSetMask", {{"conditioning", cond({entry(77, 1)})},
                                                           {"mask", tensor_value(at::rand({2, 8, 8}))},
                                                           {"strength", json(1.0)}, {"set_cond_area", json("mask bounds")}});
  EXPECT_EQ(bounds.entries[0].options.set_area_to_bounds, true);
  EXPECT_EQ(bounds.entries[0].options.mask.size(0), 2);
}

TEST(ConditioningNodes, ZeroOutZeroesCondAndPooledButKeepsOtherOptions) {
  CondEntry e = entry(77, 1);
  e.options.strength = 0.3;
  const Conditioning& out = run("ConditioningZeroOut", {{"conditioning", cond({e, entry(77, 2, false)})}});
  ASSERT_EQ(out.entries.size(), 2u);
  EXPECT_TRUE(at::equal(out.entries[0].cond, at::zeros({1, 77, 4})));
  EXPECT_TRUE(at::equal(out.entries[0].options.pooled_output, at::zeros({1, 4})));
  EXPECT_EQ(out.entries[0].options.strength, 0.3);
  EXPECT_FALSE(out.entries[1].options.pooled_output.defined());
  EXPECT_EQ(e.cond[0][0][0].item<float>(), 1);  // input untouched
}

TEST(ConditioningNodes, SetTimestepRangeStoresStartAndEndPercent) {
  const Conditioning& out = run("ConditioningSetTimestepRange",
                                {{"conditioning", cond({entry(77, 1)})}, {"start", json(0.2)}, {"end", json(0.8)}});
  EXPECT_EQ(out.entries[0].options.start_percent, 0.2);
  EXPECT_EQ(out.entries[0].options.end_percent, 0.8);
}

}  // namespace
}  // namespace comfy
