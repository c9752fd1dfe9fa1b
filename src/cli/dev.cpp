// `comfycpp dev ...`: developer tools. `dev make-checkpoint` writes a deterministic random-weight
// checkpoint in the real SD1.5 / SD2.x layouts (models/checkpoint_generator.h), for tests and
// benchmarks that need a full-size model without downloading one.
#include <CLI/CLI.hpp>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>

#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "cli/bench.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "models/checkpoint_generator.h"
#include "nn/layers.h"
#include "nn/profile.h"
#include "nn/unet.h"

namespace comfy {

namespace {

struct MakeCheckpointArgs {
  std::string arch = "sd15";
  std::string size = "tiny";
  std::string dtype = "f16";
  uint64_t seed = 0;
  std::string output;
};

at::ScalarType parse_dtype(const std::string& s) {
  if (s == "f32") return at::kFloat;
  if (s == "f16") return at::kHalf;
  if (s == "bf16") return at::kBFloat16;
  throw ComfyError("ValueError", "unknown dtype '" + s + "' (expected f32, f16 or bf16)");
}

struct BenchUnetArgs {
  std::string checkpoint = "bench/.cache/models/checkpoints/bench_sd15.safetensors";
  std::vector<int64_t> sizes = {256, 512};
  int64_t batch = 2;
  int repeat = 1;
  bool profile = false;
  bool compare = false;
  bool ops = false;
};

double process_cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

double peak_rss_mb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;
}

// `dev bench-unet`: one UNet call (batch 2 = CFG) per size on a full-size checkpoint, with the
// per-op breakdown of nn/layers. With --compare, the plain libtorch paths and the fast ones are
// timed alternately in this process (best of --repeat each) and their outputs compared.
void bench_unet(const BenchUnetArgs& a) {
  auto file = SafetensorsFile::open(a.checkpoint);
  Weights w(WeightSet::from_file(file), "model.diffusion_model.");
  const UNetConfig cfg = detect_unet_config(w);
  std::printf("checkpoint %s, threads %d, batch %lld\n", a.checkpoint.c_str(), at::get_num_threads(),
              static_cast<long long>(a.batch));
  for (int64_t size : a.sizes) {
    at::manual_seed(0);
    at::Tensor x = at::randn({a.batch, cfg.in_channels, size / 8, size / 8});
    at::Tensor ts = at::full({a.batch}, 500.0f);
    at::Tensor ctx = at::randn({a.batch, 77, cfg.context_dim});
    std::vector<bool> modes = a.compare ? std::vector<bool>{false, true} : std::vector<bool>{true};
    std::vector<double> best(2, 1e30), best_cpu(2, 1e30);
    std::vector<std::array<double, nn::profile::kCount>> best_ops(2);
    std::vector<at::Tensor> outs(2);
    const nn::Paths saved = nn::paths();
    for (int r = 0; r < a.repeat; ++r) {
      for (bool fast : modes) {
        nn::paths() = fast ? saved : nn::Paths::plain();
        nn::profile::reset();
        auto t0 = std::chrono::steady_clock::now();
        const double c0 = process_cpu_s();
        at::Tensor out = unet_forward(cfg, w, x, ts, ctx, std::nullopt, nullptr);
        double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const double cpu = process_cpu_s() - c0;
        best_cpu[fast] = std::min(best_cpu[fast], cpu);
        std::printf("  %lldx%lld %-5s run %d: %.3f s wall, %.3f s cpu\n", static_cast<long long>(size),
                    static_cast<long long>(size), fast ? "fast" : "plain", r + 1, s, cpu);
        std::fflush(stdout);
        if (s < best[fast]) {
          best[fast] = s;
          best_ops[fast] = nn::profile::seconds();
        }
        outs[fast] = out;
      }
    }
    nn::paths() = saved;
    for (bool fast : modes) {
      std::printf("%lldx%lld %s: best %.3f s wall, %.3f s cpu", static_cast<long long>(size),
                  static_cast<long long>(size), fast ? "fast" : "plain", best[fast], best_cpu[fast]);
      if (nn::profile::enabled()) {
        const auto& ops = best_ops[fast];
        double sum = 0;
        for (int i = 0; i < nn::profile::kCount; ++i) {
          // Casts run inside the other ops' scopes: report them apart and subtract.
          if (i != nn::profile::kCast) sum += ops[i];
        }
        std::printf("  [");
        for (int i = 0; i < nn::profile::kCount; ++i)
          std::printf("%s %.3f%s", nn::profile::name(static_cast<nn::profile::Op>(i)), ops[i], i + 1 < nn::profile::kCount ? ", " : "");
        std::printf(", other %.3f; casts are inside the others]", best[fast] - sum);
      }
      std::printf("\n");
    }
    if (a.compare) {
      at::Tensor d = (outs[1] - outs[0]).abs();
      std::printf("%lldx%lld fast/plain = %.3f wall, %.3f cpu; max |diff| %.3g, max |plain| %.3g, rel-rms %.3g\n",
                  static_cast<long long>(size), static_cast<long long>(size), best[1] / best[0],
                  best_cpu[1] / best_cpu[0], d.max().item<double>(), outs[0].abs().max().item<double>(),
                  (d.pow(2).mean().sqrt() / outs[0].pow(2).mean().sqrt()).item<double>());
    }
  }
  std::printf("peak RSS %.0f MB\n", peak_rss_mb());
}

// `dev bench-unet --ops`: SD1.5's heaviest single ops at 512x512 (batch 2), plain and fast paths
// alternately, best of `repeat`.
void bench_ops(int repeat) {
  at::manual_seed(0);
  auto time_best = [&](const char* what, const std::function<at::Tensor()>& fn) {
    double best[2] = {1e30, 1e30};
    at::Tensor out[2];
    const nn::Paths saved = nn::paths();
    for (int r = 0; r < repeat; ++r) {
      for (int fast = 0; fast < 2; ++fast) {
        nn::paths() = fast ? saved : nn::Paths::plain();
        auto t0 = std::chrono::steady_clock::now();
        out[fast] = fn();
        best[fast] = std::min(best[fast], std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
    }
    nn::paths() = saved;
    double diff = (out[1] - out[0]).abs().max().item<double>();
    std::printf("%-44s plain %8.2f ms  fast %8.2f ms  fast/plain %.3f  max|diff| %.3g\n", what, best[0] * 1e3,
                best[1] * 1e3, best[1] / best[0], diff);
    std::fflush(stdout);
  };
  {
    at::Tensor q = at::randn({2, 4096, 320}), k = at::randn({2, 4096, 320}), v = at::randn({2, 4096, 320});
    time_best("attention self 2x4096x320, 8 heads", [&] { return nn::attention(q, k, v, 8); });
    at::Tensor kc = at::randn({2, 77, 320}), vc = at::randn({2, 77, 320});
    time_best("attention cross 2x4096x320 by 77, 8 heads", [&] { return nn::attention(q, kc, vc, 8); });
  }
  struct ConvCase { int64_t cin, cout, hw, ks, stride; };
  for (ConvCase c : {ConvCase{320, 320, 64, 3, 1}, ConvCase{640, 640, 32, 3, 1}, ConvCase{1280, 1280, 16, 3, 1},
                     ConvCase{1280, 1280, 8, 3, 1}, ConvCase{320, 320, 64, 3, 2}, ConvCase{320, 320, 64, 1, 1}}) {
    for (at::ScalarType wdt : {at::kHalf, at::kFloat}) {
      auto set = WeightSet::from_tensors({{"weight", (at::randn({c.cout, c.cin, c.ks, c.ks}) * 0.02).to(wdt)},
                                          {"bias", at::randn({c.cout}).to(wdt)}});
      Weights w(set);
      at::Tensor x = at::randn({2, c.cin, c.hw, c.hw});
      std::string what = "conv " + std::to_string(c.cin) + "->" + std::to_string(c.cout) + " " + std::to_string(c.ks) + "x" +
                         std::to_string(c.ks) + "/" + std::to_string(c.stride) + " at " + std::to_string(c.hw) + "x" +
                         std::to_string(c.hw) + (wdt == at::kHalf ? " f16 w" : " f32 w");
      time_best(what.c_str(), [&] { return nn::conv2d(w, x, c.stride, c.ks / 2); });
    }
  }
  {
    auto set = WeightSet::from_tensors({{"weight", at::randn({320}).to(at::kHalf)}, {"bias", at::randn({320}).to(at::kHalf)}});
    at::Tensor x = at::randn({2, 320, 64, 64});
    time_best("group_norm+silu 2x320x64x64", [&] { return nn::group_norm_silu(Weights(set), x, 32, 1e-5); });
  }
}

}  // namespace

// Adds the `dev` command to `app`; the chosen tool runs while the command line is parsed and
// leaves its exit status in *exit_code.
CLI::App* add_dev_command(CLI::App& app, int* exit_code) {
  CLI::App* dev = app.add_subcommand("dev", "Developer tools.");
  dev->require_subcommand(1);
  auto args = std::make_shared<MakeCheckpointArgs>();
  CLI::App* make = dev->add_subcommand("make-checkpoint", "Write a random-weight SD1.5/SD2 checkpoint (safetensors).");
  make->add_option("--arch", args->arch, "sd15, sd2 (eps) or sd2-v (v-prediction)")
      ->check(CLI::IsMember({"sd15", "sd2", "sd2-v"}));
  make->add_option("--size", args->size, "tiny (test widths) or full (the real sizes)")
      ->check(CLI::IsMember({"tiny", "full"}));
  make->add_option("--dtype", args->dtype, "f32, f16 or bf16")->check(CLI::IsMember({"f32", "f16", "bf16"}));
  make->add_option("--seed", args->seed, "seed of the weights");
  make->add_option("-o,--output", args->output, "the file to write")->required();
  make->callback([args, exit_code] {
    try {
      c10::InferenceMode guard;
      make_checkpoint(args->arch, args->size, parse_dtype(args->dtype), args->seed, args->output);
      std::cout << "wrote " << args->output << " (" << args->arch << ", " << args->size << ", " << args->dtype
                << ", seed " << args->seed << ")\n";
      *exit_code = 0;
    } catch (const std::exception& e) {
      std::cerr << "make-checkpoint: " << e.what() << "\n";
      *exit_code = 1;
    }
  });
  auto bargs = std::make_shared<BenchUnetArgs>();
  CLI::App* bench = dev->add_subcommand("bench-unet", "Time one UNet call (batch 2) per size on a full-size checkpoint.");
  bench->add_option("--checkpoint", bargs->checkpoint, "the checkpoint (bench/sd15_txt2img.sh makes one)");
  bench->add_option("--sizes", bargs->sizes, "image sizes in pixels")->delimiter(',');
  bench->add_option("--batch", bargs->batch, "batch (2 = one CFG step)");
  bench->add_option("--repeat", bargs->repeat, "calls per size and path (the best is reported)");
  bench->add_flag("--profile", bargs->profile, "per-op times (also COMFY_PROFILE_OPS=1)");
  bench->add_flag("--ops", bargs->ops, "time single SD1.5 ops (attention, convs, norms) instead, plain vs fast");
  bench->add_flag("--compare", bargs->compare, "alternate plain libtorch and fast paths, compare outputs");
  bench->callback([bargs, exit_code] {
    try {
      c10::InferenceMode guard;
      if (bargs->profile) nn::profile::enable(true);
      if (bargs->ops) bench_ops(bargs->repeat);
      else bench_unet(*bargs);
      *exit_code = 0;
    } catch (const std::exception& e) {
      std::cerr << "bench-unet: " << e.what() << "\n";
      *exit_code = 1;
    }
  });
  add_bench_command(*dev, exit_code);
  return dev;
}

}  // namespace comfy
