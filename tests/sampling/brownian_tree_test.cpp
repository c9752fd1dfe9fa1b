// The Brownian tree behind the SDE samplers: numpy SeedSequence and torchsde BrownianTree values
// recorded by tools/oracle/record_samplers.py, and the properties a Brownian path must have.
#include <gtest/gtest.h>

#include <fstream>

#include "core/json.h"
#include "sampling/brownian_tree.h"

namespace comfy {
namespace {

const json& recorded() {
  static const json data = [] {
    std::ifstream in(std::string(COMFY_TEST_DATA) + "/sampling/samplers.json");
    return json::parse(in);
  }();
  return data;
}

TEST(SeedSequence, StatesMatchNumpy) {
  for (const auto& c : recorded()["seed_sequence"]) {
    uint64_t entropy = std::stoull(c["entropy"].get<std::string>());
    std::vector<uint64_t> spawn = c["spawn_key"].get<std::vector<uint64_t>>();
    SeedSequence seq(entropy, spawn, c["pool_size"].get<size_t>());
    std::vector<uint32_t> want = c["state"].get<std::vector<uint32_t>>();
    EXPECT_EQ(seq.generate_state(want.size()), want) << c.dump();
  }
}

TEST(BrownianTree, IncrementsMatchTorchsde) {
  const json& b = recorded()["brownian"];
  BrownianTree tree(b["t0"].get<double>(), b["t1"].get<double>(), b["size"].get<std::vector<int64_t>>(),
                    b["entropy"].get<uint64_t>());
  for (const auto& q : b["queries"]) {
    at::Tensor w = tree(q["ta"].get<double>(), q["tb"].get<double>());
    std::vector<float> want = q["w"].get<std::vector<float>>();
    at::Tensor ref = at::tensor(want, at::kFloat).reshape(w.sizes());
    EXPECT_LE((w - ref).abs().max().item<float>(), 1e-6) << q.dump();
  }
}

TEST(BrownianTree, PathDoesNotDependOnQueryOrderOrOtherPoints) {
  std::vector<int64_t> size = {3, 5};
  BrownianTree a(0.03, 14.6, size, 99), b(0.03, 14.6, size, 99);
  at::Tensor a1 = a(1.0, 2.0);
  at::Tensor a2 = a(5.0, 9.5);
  // b: other points first (as a sampler with another step count would query), then the same ones.
  for (double t : {0.5, 3.0, 7.7, 12.0}) b(t, t + 0.4);
  at::Tensor b2 = b(5.0, 9.5);
  at::Tensor b1 = b(1.0, 2.0);
  EXPECT_TRUE(at::equal(a1, b1));
  EXPECT_TRUE(at::equal(a2, b2));
  // Increments add up along a path.
  at::Tensor whole = a(1.0, 9.5);
  at::Tensor parts = a(1.0, 2.0) + a(2.0, 5.0) + a(5.0, 9.5);
  EXPECT_LE((whole - parts).abs().max().item<float>(), 1e-5);
  // Another entropy gives another path.
  BrownianTree c(0.03, 14.6, size, 100);
  EXPECT_FALSE(at::equal(c(1.0, 2.0), a1));
}

TEST(BrownianTree, IncrementVarianceIsTheIntervalLength) {
  // 20000 samples of W(t) - W(s) over [2, 6.5]: variance 4.5; the sample variance has a
  // standard error of 4.5 * sqrt(2 / 20000) ~ 0.045, the bound is 10 of them (fixed seed).
  BrownianTree tree(0.03, 14.6, {20000}, 7);
  at::Tensor w = tree(2.0, 6.5);
  EXPECT_NEAR(w.mean().item<float>(), 0.0, 0.15);
  EXPECT_NEAR(w.var().item<float>(), 4.5, 0.45);
  at::Tensor small = tree(6.5, 6.75);
  EXPECT_NEAR(small.var().item<float>(), 0.25, 0.025);
  // Disjoint increments are independent.
  float corr = ((w - w.mean()) * (small - small.mean())).mean().item<float>() /
               std::sqrt(w.var().item<float>() * small.var().item<float>());
  EXPECT_NEAR(corr, 0.0, 0.1);
}

}  // namespace
}  // namespace comfy
