// The CPU fast paths of nn/layers (oneDNN convolutions, blocked attention, fused GroupNorm+SiLU,
// the f16 weight conversion) against the plain libtorch ops on random inputs, over the shapes
// the networks use and the awkward ones (tails, padding, odd channel counts).
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <thread>

#include "io/safetensors.h"
#include "models/weight_pages.h"
#include "nn/conv.h"
#include "nn/layers.h"
#include "nn/matmul.h"
#include "nn/profile.h"

namespace comfy {
namespace {

// Runs fn on the plain paths and on the fast ones; returns max |fast - plain| / max |plain|.
template <typename F>
double fast_vs_plain(F fn) {
  const nn::Paths saved = nn::paths();
  nn::paths() = nn::Paths::plain();
  at::Tensor plain = fn();
  nn::paths() = nn::Paths{};
  at::Tensor fast = fn();
  nn::paths() = saved;
  EXPECT_EQ(plain.sizes(), fast.sizes());
  return (fast - plain).abs().max().item<double>() / std::max(1e-12, plain.abs().max().item<double>());
}

TEST(FastPaths, AttentionMatchesSoftmaxOfScores) {
  c10::InferenceMode guard;
  at::manual_seed(1);
  struct Case { int64_t b, lq, lk, heads, d; };
  for (Case c : {Case{2, 4096, 4096, 8, 40}, Case{2, 1024, 77, 8, 80}, Case{1, 100, 70, 5, 64},
                 Case{2, 37, 129, 2, 160}, Case{1, 64, 64, 1, 8}, Case{3, 33, 1, 4, 16}}) {
    at::Tensor q = at::randn({c.b, c.lq, c.heads * c.d}) * 2;
    at::Tensor k = at::randn({c.b, c.lk, c.heads * c.d});
    at::Tensor v = at::randn({c.b, c.lk, c.heads * c.d});
    double rel = fast_vs_plain([&] { return nn::attention(q, k, v, c.heads); });
    EXPECT_LT(rel, 1e-5) << "b " << c.b << " lq " << c.lq << " lk " << c.lk << " heads " << c.heads << " d " << c.d;
  }
}

TEST(FastPaths, AttentionOnStridedInputs) {
  c10::InferenceMode guard;
  at::manual_seed(2);
  // q, k, v as column slices of one [B, L, 3*C] tensor (row stride 3*C).
  at::Tensor qkv = at::randn({2, 256, 3 * 320});
  auto parts = qkv.chunk(3, -1);
  double rel = fast_vs_plain([&] { return nn::attention(parts[0], parts[1], parts[2], 8); });
  EXPECT_LT(rel, 1e-5);
}

TEST(FastPaths, ConvolutionsMatchLibtorch) {
  c10::InferenceMode guard;
  at::manual_seed(3);
  struct Case { int64_t n, cin, cout, hw, ks, stride; at::ScalarType wdt; };
  for (Case c : {Case{2, 320, 320, 32, 3, 1, at::kHalf}, Case{2, 4, 320, 16, 3, 1, at::kHalf},
                 Case{1, 64, 32, 40, 3, 2, at::kFloat}, Case{2, 1280, 640, 8, 3, 1, at::kHalf},
                 Case{1, 96, 48, 24, 1, 1, at::kHalf}, Case{1, 3, 5, 7, 3, 1, at::kFloat},
                 Case{2, 16, 24, 11, 3, 2, at::kHalf}, Case{1, 12, 20, 4, 1, 1, at::kBFloat16}}) {
    auto set = WeightSet::from_tensors({{"weight", (at::randn({c.cout, c.cin, c.ks, c.ks}) * 0.05).to(c.wdt)},
                                        {"bias", at::randn({c.cout}).to(c.wdt)}});
    Weights w(set);
    at::Tensor x = at::randn({c.n, c.cin, c.hw, c.hw});
    double rel = fast_vs_plain([&] { return nn::conv2d(w, x, c.stride, c.ks / 2); });
    EXPECT_LT(rel, 1e-5) << c.cin << "->" << c.cout << " " << c.ks << "x" << c.ks << "/" << c.stride << " at " << c.hw;
  }
  // Without a bias, and on a non-contiguous input.
  auto set = WeightSet::from_tensors({{"weight", (at::randn({16, 8, 3, 3}) * 0.1).to(at::kHalf)}});
  at::Tensor x = at::randn({1, 12, 8, 8}).narrow(1, 2, 8);
  EXPECT_LT(fast_vs_plain([&] { return nn::conv2d(Weights(set), x, 1, 1); }), 1e-5);
}

// The oneDNN primitives are cached per shape for the whole process; a primitive made on one thread
// (one server's executor) must run on others (the next server's, a test's): two servers in one
// process crashed when its scratchpad belonged to the thread that made it.
TEST(FastPaths, ConvolutionMadeOnOneThreadRunsOnOthers) {
  c10::InferenceMode guard;
  at::manual_seed(5);
  // A small map: oneDNN's im2col + gemm kernel, whose im2col buffer is the scratchpad.
  at::Tensor x = at::randn({2, 4, 8, 8});
  at::Tensor weight = at::randn({32, 4, 3, 3}) * 0.05, bias = at::randn({32});
  at::Tensor expected = at::conv2d(x, weight, bias, 1, 1);
  EXPECT_LT((nn::conv2d_onednn(x, weight, bias, 1, 1) - expected).abs().max().item<float>(), 1e-4);  // made here
  auto run_on_new_thread = [&] {
    at::Tensor y;
    std::thread t([&] {
      c10::InferenceMode g;
      y = nn::conv2d_onednn(x, weight, bias, 1, 1);
    });
    t.join();
    return y;
  };
  for (int i = 0; i < 3; ++i) {
    at::Tensor y = run_on_new_thread();
    EXPECT_LT((y - expected).abs().max().item<float>() / expected.abs().max().item<float>(), 1e-5) << "thread " << i;
  }
}

TEST(FastPaths, GroupNormAndSiluMatchLibtorch) {
  c10::InferenceMode guard;
  at::manual_seed(4);
  for (auto shape : {std::vector<int64_t>{2, 320, 64, 64}, {1, 64, 5, 7}, {2, 96, 3, 1}}) {
    at::Tensor x = at::randn(shape) * 3 + 1;
    auto set = WeightSet::from_tensors({{"weight", at::randn({shape[1]}).to(at::kHalf)}, {"bias", at::randn({shape[1]})}});
    Weights w(set);
    EXPECT_LT(fast_vs_plain([&] { return nn::group_norm(w, x, 32, 1e-5); }), 1e-5);
    EXPECT_LT(fast_vs_plain([&] { return nn::group_norm_silu(w, x, 32, 1e-6); }), 1e-5);
  }
  // SiLU of large magnitudes stays finite and exact at the ends.
  at::Tensor x = at::linspace(-200, 200, 32 * 64).reshape({1, 32, 8, 8});
  auto set = WeightSet::from_tensors({{"weight", at::full({32}, 100.0f)}, {"bias", at::zeros({32})}});
  at::Tensor y = nn::group_norm_silu(Weights(set), x, 32, 1e-5);
  EXPECT_TRUE(y.isfinite().all().item<bool>());
  EXPECT_LT(fast_vs_plain([&] { return nn::group_norm_silu(Weights(set), x, 32, 1e-5); }), 1e-5);
}

TEST(FastPaths, ConsumingVariantsMatchAndSpareSharedInputs) {
  c10::InferenceMode guard;
  at::manual_seed(5);
  auto set = WeightSet::from_tensors({{"weight", (at::randn({24, 32, 3, 3}) * 0.05).to(at::kHalf)},
                                      {"bias", at::randn({24}).to(at::kHalf)}});
  auto norm = WeightSet::from_tensors({{"weight", at::randn({32})}, {"bias", at::randn({32})}});
  for (int64_t hw : {9, 40}) {  // the gemm and the blocked (reordered) kernels
    at::Tensor x = at::randn({1, 32, hw, hw});
    const at::Tensor kept = x.clone();
    at::Tensor expected = nn::conv2d(Weights(set), x, 1, 1);
    EXPECT_TRUE(at::equal(nn::conv2d_consume(Weights(set), x.clone(), 1, 1), expected)) << hw;
    EXPECT_TRUE(at::equal(nn::conv2d_consume(Weights(set), x, 1, 1), expected)) << hw;
    EXPECT_TRUE(at::equal(x, kept));  // still referenced here: read, not changed

    at::Tensor gn = nn::group_norm_silu(Weights(norm), x, 32, 1e-6);
    // Sole owner: computed in place, same values.
    at::Tensor own = x.clone();
    const void* own_data = own.data_ptr();
    at::Tensor in_place = nn::group_norm_silu_consume(Weights(norm), std::move(own), 32, 1e-6);
    EXPECT_TRUE(at::equal(in_place, gn));
    if (nn::paths().gn_silu) {
      EXPECT_EQ(in_place.data_ptr(), own_data);
    }
    // Shared (another reference, or a view of a larger tensor): the input is left alone.
    at::Tensor gn_shared = nn::group_norm_silu_consume(Weights(norm), x, 32, 1e-6);
    EXPECT_TRUE(at::equal(gn_shared, gn));
    EXPECT_TRUE(at::equal(x, kept));
    at::Tensor base = at::cat({x, x}, 0);
    const at::Tensor base_kept = base.clone();
    at::Tensor view_out = nn::group_norm_silu_consume(Weights(norm), base.narrow(0, 0, 1), 32, 1e-6);
    EXPECT_TRUE(at::equal(view_out, gn));
    EXPECT_TRUE(at::equal(base, base_kept));
  }
}

TEST(WeightPages, ReleasedPagesReadBackUnchanged) {
  c10::InferenceMode guard;
  at::manual_seed(6);
  const auto path = std::filesystem::temp_directory_path() / ("comfy_weight_pages_" + std::to_string(::getpid()) + ".safetensors");
  at::Tensor a = at::randn({256, 1024}).to(at::kHalf), b = at::randn({300, 700});
  save_safetensors(path, {{"clip.a", a}, {"unet.b", b}});
  {
    auto set = WeightSet::from_file(SafetensorsFile::open(path));
    Weights clip(set, "clip."), unet(set, "unet.");
    at::Tensor a_sum = clip("a").sum(), b_sum = unet("b").sum();  // touch every page
    // The 512 KB of clip.a hold 126 whole pages at least (4 KB pages); nothing of unet.b's own
    // pages is counted.
    const int64_t released = release_weight_pages(clip);
    EXPECT_GE(released, 120 * 4096);
    EXPECT_LE(released, a.numel() * 2);
    EXPECT_TRUE(at::equal(clip("a", at::kHalf), a));
    EXPECT_TRUE(at::equal(unet("b"), b));
    EXPECT_GE(release_all_weight_pages(), static_cast<int64_t>(a.numel() * 2 + b.numel() * 4) - 2 * 4096);
    EXPECT_TRUE(at::equal(clip("a", at::kHalf), a));
    EXPECT_TRUE(at::equal(unet("b"), b));
    EXPECT_EQ(clip("a").sum().item<float>(), a_sum.item<float>());
    EXPECT_EQ(unet("b").sum().item<float>(), b_sum.item<float>());
    // In-memory weights have no pages to release.
    EXPECT_EQ(release_weight_pages(Weights(WeightSet::from_tensors({{"x", a}}))), 0);
  }
  std::filesystem::remove(path);
}

TEST(FastPaths, HalfToFloatIsExact) {
  c10::InferenceMode guard;
  at::Tensor h = (at::randn({1001}) * 1000).to(at::kHalf);
  EXPECT_TRUE(at::equal(nn::to_float(h), h.to(at::kFloat)));
  at::Tensor f = at::randn({5});
  EXPECT_TRUE(nn::to_float(f).is_same(f));
}

}  // namespace
}  // namespace comfy
