// The guider's conditioning math (comfy/samplers.py) on an analytic model whose denoised output
// is the mean of its context: every expected value below follows from ComfyUI's formulas by hand
// (weighted averages over areas and masks, the feathered area edges, cfg mixing).
#include <gtest/gtest.h>

#include <vector>

#include "sampling/cfg_guider.h"

namespace comfy::testing {
namespace {

struct Call {
  int64_t batch;
  int64_t tokens;
  std::vector<double> context_means;  // per batch item, in call order
};

struct Analytic {
  std::vector<Call> calls;
  // denoised = mean(context) everywhere, per batch item.
  ModelApply apply() {
    return [this](const at::Tensor& x, const at::Tensor&, const ModelConds& c) {
      Call call{x.size(0), c.c_crossattn.size(1), {}};
      at::Tensor means = c.c_crossattn.mean({1, 2});
      for (int64_t b = 0; b < means.size(0); ++b) call.context_means.push_back(means[b].item<double>());
      calls.push_back(call);
      return means.reshape({-1, 1, 1, 1}).expand_as(x).contiguous();
    };
  }
};

std::shared_ptr<const DiffusionModel> model(int64_t in_channels = 4) {
  auto m = std::make_shared<DiffusionModel>();
  m->family = "SD15";
  m->sampling = ModelSampling::discrete(Prediction::Eps);
  m->latent_format = LatentFormat::sd15();
  m->unet.in_channels = in_channels;
  return m;
}

CondEntry entry(double value, int64_t tokens = 77, CondOptions o = {}) {
  return CondEntry{at::full({1, tokens, 8}, value, at::kFloat), std::move(o)};
}
Conditioning conds(std::vector<CondEntry> e) {
  Conditioning c;
  c.entries = std::move(e);
  return c;
}
CondOptions area(double h, double w, double y, double x, bool percentage = false) {
  CondOptions o;
  o.area = CondArea{percentage, {h, w, y, x}};
  return o;
}

// One prediction of `g` at sigma on a zero latent [1,4,H,W].
at::Tensor predict(const Guider& g, const std::vector<std::pair<std::string, std::vector<CondEntry>>>& lists,
                   double sigma, int64_t h = 8, int64_t w = 16, bool capture = false, GuiderRun* keep = nullptr) {
  at::Tensor x = at::zeros({1, 4, h, w});
  GuiderRun local;
  GuiderRun& run = keep ? *keep : local;
  run.conds = process_conds(g.model(), lists, x, x, at::Tensor());
  run.capture_uncond = capture;
  return g.predict(run, x, at::full({1}, sigma, at::kFloat));
}

TEST(CFGGuider, MixesPositiveAndNegativeByCfg) {
  Analytic a;
  Conditioning pos = conds({entry(2.0)}), neg = conds({entry(1.0)});
  CFGGuider g(model(), pos, neg, 7.5, a.apply());
  at::Tensor out = predict(g, {{"positive", pos.entries}, {"negative", neg.entries}}, 1.0);
  EXPECT_NEAR(out.min().item<double>(), 8.5, 1e-5);
  EXPECT_NEAR(out.max().item<double>(), 8.5, 1e-5);
}

TEST(CFGGuider, BatchesNegativeAndPositiveInOneCallNegativeFirst) {
  Analytic a;
  Conditioning pos = conds({entry(2.0)}), neg = conds({entry(1.0)});
  CFGGuider g(model(), pos, neg, 3.0, a.apply());
  predict(g, {{"positive", pos.entries}, {"negative", neg.entries}}, 1.0);
  ASSERT_EQ(a.calls.size(), 1u);
  EXPECT_EQ(a.calls[0].batch, 2);
  EXPECT_EQ(a.calls[0].context_means, (std::vector<double>{1.0, 2.0}));
}

TEST(CFGGuider, CfgOneSkipsTheNegative) {
  Analytic a;
  Conditioning pos = conds({entry(2.0)}), neg = conds({entry(1.0)});
  CFGGuider g(model(), pos, neg, 1.0, a.apply());
  at::Tensor out = predict(g, {{"positive", pos.entries}, {"negative", neg.entries}}, 1.0);
  ASSERT_EQ(a.calls.size(), 1u);
  EXPECT_EQ(a.calls[0].batch, 1);
  EXPECT_NEAR(out.max().item<double>(), 2.0, 1e-6);
}

TEST(CFGGuider, CaptureUncondRunsTheNegativeEvenAtCfgOne) {
  Analytic a;
  Conditioning pos = conds({entry(2.0)}), neg = conds({entry(1.0)});
  CFGGuider g(model(), pos, neg, 1.0, a.apply());
  GuiderRun run;
  predict(g, {{"positive", pos.entries}, {"negative", neg.entries}}, 1.0, 8, 16, true, &run);
  ASSERT_EQ(a.calls.size(), 1u);
  EXPECT_EQ(a.calls[0].batch, 2);
  ASSERT_TRUE(run.last_uncond.defined());
  EXPECT_NEAR(run.last_uncond.max().item<double>(), 1.0, 1e-6);
}

TEST(CFGGuider, AreaBlendsWithAFeatheredInnerEdge) {
  Analytic a;
  // Right half of an 8x16 latent: the area starts at x=8, so its first rr = min(8, 8/4) = 2
  // columns ramp 1/2, 1; it reaches the right and both vertical borders, so nothing else fades.
  Conditioning pos = conds({entry(1.0), entry(3.0, 77, area(8, 8, 0, 8))}), neg = conds({entry(0.0)});
  CFGGuider g(model(), pos, neg, 1.0, a.apply());
  at::Tensor out = predict(g, {{"positive", pos.entries}, {"negative", neg.entries}}, 1.0).select(0, 0).select(0, 0);
  for (int64_t row : {0, 7}) {
    EXPECT_NEAR(out[row][0].item<double>(), 1.0, 1e-6);
    EXPECT_NEAR(out[row][7].item<double>(), 1.0, 1e-6);
    EXPECT_NEAR(out[row][8].item<double>(), (1.0 + 3.0 * 0.5) / 1.5, 1e-6);
    EXPECT_NEAR(out[row][9].item<double>(), 2.0, 1e-6);
    EXPECT_NEAR(out[row][15].item<double>(), 2.0, 1e-6);
  }
}

TEST(CFGGuider, AreaEntriesGetAMatchingEntryInTheOtherList) {
  Conditioning pos = conds({entry(1.0), entry(3.0, 77, area(8, 8, 0, 8))}), neg = conds({entry(5.0)});
  auto lists = process_conds(*model(), {{"positive", pos.entries}, {"negative", neg.entries}},
                             at::zeros({1, 4, 8, 16}), at::zeros({1, 4, 8, 16}), at::Tensor());
  ASSERT_EQ(lists[1].first, "negative");
  ASSERT_EQ(lists[1].second.size(), 2u);
  const SamplingCond& copy = lists[1].second[1];
  ASSERT_TRUE(copy.area.has_value());
  EXPECT_EQ(*copy.area, (std::array<int64_t, 4>{8, 8, 0, 8}));
  EXPECT_EQ(copy.c_crossattn.mean().item<double>(), 5.0);  // the negative's own context
  EXPECT_EQ(lists[0].second.size(), 2u);                    // nothing added to the positive
}

TEST(CFGGuider, PercentageAreasRoundHalfToEvenAtTheLatentSize) {
  Conditioning pos = conds({entry(1.0, 77, area(0.5, 0.5, 0.3125, 0.21875, true))});
  auto lists = process_conds(*model(), {{"positive", pos.entries}}, at::zeros({1, 4, 8, 16}),
                             at::zeros({1, 4, 8, 16}), at::Tensor());
  // h 0.5*8=4, w 0.5*16=8, y 0.3125*8=2.5 -> 2, x 0.21875*16=3.5 -> 4.
  EXPECT_EQ(*lists[0].second[0].area, (std::array<int64_t, 4>{4, 8, 2, 4}));
}

TEST(CFGGuider, MaskWeightsItsEntryWithoutFeathering) {
  Analytic a;
  CondOptions o;
  o.mask = at::zeros({1, 8, 16});
  o.mask.slice(1, 0, 4).fill_(1.0);
  o.mask_strength = 0.5;
  Conditioning pos = conds({entry(1.0), entry(3.0, 77, o)}), neg = conds({entry(0.0)});
  CFGGuider g(model(), pos, neg, 1.0, a.apply());
  at::Tensor out = predict(g, {{"positive", pos.entries}, {"negative", neg.entries}}, 1.0).select(0, 0).select(0, 0);
  EXPECT_NEAR(out[0][0].item<double>(), (1.0 + 3.0 * 0.5) / 1.5, 1e-6);
  EXPECT_NEAR(out[3][15].item<double>(), (1.0 + 3.0 * 0.5) / 1.5, 1e-6);
  EXPECT_NEAR(out[4][0].item<double>(), 1.0, 1e-6);
}

TEST(CFGGuider, SetAreaToBoundsCutsTheMaskBoxAtLeastEightWide) {
  CondOptions o;
  o.mask = at::zeros({1, 8, 16});
  o.mask.slice(1, 2, 4).slice(2, 5, 7).fill_(1.0);
  o.set_area_to_bounds = true;
  Conditioning pos = conds({entry(1.0, 77, o)});
  auto lists = process_conds(*model(), {{"positive", pos.entries}}, at::zeros({1, 4, 8, 16}),
                             at::zeros({1, 4, 8, 16}), at::Tensor());
  EXPECT_EQ(*lists[0].second[0].area, (std::array<int64_t, 4>{8, 8, 2, 5}));
}

TEST(CFGGuider, StrengthWeightsTheAverage) {
  Analytic a;
  CondOptions o;
  o.strength = 2.0;
  Conditioning pos = conds({entry(1.0), entry(3.0, 77, o)}), neg = conds({entry(0.0)});
  CFGGuider g(model(), pos, neg, 1.0, a.apply());
  at::Tensor out = predict(g, {{"positive", pos.entries}, {"negative", neg.entries}}, 1.0);
  EXPECT_NEAR(out.max().item<double>(), 7.0 / 3.0, 1e-6);
}

TEST(CFGGuider, TimestepRangeGatesAnEntryBySigma) {
  CondOptions o;
  o.start_percent = 0.5;
  o.end_percent = 1.0;
  Conditioning pos = conds({entry(1.0), entry(3.0, 77, o)}), neg = conds({entry(0.0)});
  double half = model()->sampling.percent_to_sigma(0.5);
  {
    Analytic a;
    CFGGuider g(model(), pos, neg, 1.0, a.apply());
    at::Tensor early = predict(g, {{"positive", pos.entries}, {"negative", neg.entries}}, half * 2);
    EXPECT_NEAR(early.max().item<double>(), 1.0, 1e-6);
  }
  {
    Analytic a;
    CFGGuider g(model(), pos, neg, 1.0, a.apply());
    at::Tensor late = predict(g, {{"positive", pos.entries}, {"negative", neg.entries}}, half / 2);
    EXPECT_NEAR(late.max().item<double>(), 2.0, 1e-6);
  }
}

TEST(CFGGuider, LongerPromptsBatchWithShorterOnesRepeated) {
  Analytic a;
  Conditioning pos = conds({entry(2.0, 154)}), neg = conds({entry(1.0, 77)});
  CFGGuider g(model(), pos, neg, 2.0, a.apply());
  at::Tensor out = predict(g, {{"positive", pos.entries}, {"negative", neg.entries}}, 1.0);
  ASSERT_EQ(a.calls.size(), 1u);
  EXPECT_EQ(a.calls[0].tokens, 154);
  EXPECT_NEAR(out.max().item<double>(), 3.0, 1e-6);
}

TEST(DualCFGGuider, RegularAndNestedStyles) {
  Conditioning c1 = conds({entry(3.0)}), c2 = conds({entry(2.0)}), neg = conds({entry(1.0)});
  std::vector<std::pair<std::string, std::vector<CondEntry>>> lists = {
      {"positive", c1.entries}, {"middle", c2.entries}, {"negative", neg.entries}};
  Analytic a;
  DualCFGGuider regular(model(), c1, c2, neg, 2.0, 3.0, false, a.apply());
  // cfg_function(middle, negative, cfg2) + (cond1 - middle) * cfg1 = (1 + 1*3) + 1*2
  EXPECT_NEAR(predict(regular, lists, 1.0).max().item<double>(), 6.0, 1e-5);
  DualCFGGuider nested(model(), c1, c2, neg, 2.0, 3.0, true, a.apply());
  // negative + cfg2 * (cfg_function(cond1, middle, cfg1) - negative) = 1 + 3 * ((2 + 1*2) - 1)
  EXPECT_NEAR(predict(nested, lists, 1.0).max().item<double>(), 10.0, 1e-5);
}

TEST(BasicGuider, UsesThePositiveAlone) {
  Analytic a;
  Conditioning pos = conds({entry(4.0)});
  BasicGuider g(model(), pos, a.apply());
  at::Tensor out = predict(g, {{"positive", pos.entries}}, 1.0);
  ASSERT_EQ(a.calls.size(), 1u);
  EXPECT_EQ(a.calls[0].batch, 1);
  EXPECT_NEAR(out.max().item<double>(), 4.0, 1e-6);
}

TEST(InpaintConcat, WithoutAMaskTheWholeImageIsPaintedOverABlank) {
  Conditioning pos = conds({entry(1.0)});
  auto lists = process_conds(*model(9), {{"positive", pos.entries}}, at::zeros({1, 4, 8, 8}),
                             at::zeros({1, 4, 8, 8}), at::Tensor());
  at::Tensor c = lists[0].second[0].c_concat;
  ASSERT_EQ(c.sizes(), (std::vector<int64_t>{1, 5, 8, 8}));
  EXPECT_EQ(c.select(1, 0).min().item<double>(), 1.0);
  const double blank[4] = {0.8223, -0.6876, 0.6364, 0.1380};
  for (int64_t ch = 0; ch < 4; ++ch) EXPECT_NEAR(c.select(1, ch + 1).max().item<double>(), blank[ch], 1e-6);
}

TEST(InpaintConcat, TheDenoiseMaskIsRoundedAndTheLatentFollows) {
  Conditioning pos = conds({entry(1.0)});
  at::Tensor latent = at::full({1, 4, 8, 8}, 0.25), mask = at::full({1, 4, 8, 8}, 0.6);
  auto lists = process_conds(*model(9), {{"positive", pos.entries}}, at::zeros({1, 4, 8, 8}), latent, mask);
  at::Tensor c = lists[0].second[0].c_concat;
  EXPECT_EQ(c.select(1, 0).min().item<double>(), 1.0);  // round(0.6)
  EXPECT_EQ(c.slice(1, 1, 5).max().item<double>(), 0.25);
}

}  // namespace
}  // namespace comfy::testing
