// `comfycpp dev ...`: developer tools. `dev make-checkpoint` writes a deterministic random-weight
// checkpoint in the real SD1.5 / SD2.x layouts (models/checkpoint_generator.h), for tests and
// benchmarks that need a full-size model without downloading one.
#include <CLI/CLI.hpp>
#include <c10/core/InferenceMode.h>

#include <iostream>

#include "core/error.h"
#include "models/checkpoint_generator.h"

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
  return dev;
}

}  // namespace comfy
