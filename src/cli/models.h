// `comfycpp models`: inspect the model folders without loading tensors.
//   models list [FOLDER]          every model file of every folder (or of one), with sizes
//   models info FILE              header summary, __metadata__, detected family and kind, the
//                                 "belongs in models/X" hint, SHA-256 and AutoV2
//   models hash FILE [--blake3]   SHA-256 (cached in SQLite by path, size and mtime), or BLAKE3
//   models convert FILE           a pickle checkpoint -> FILE's stem + .safetensors, atomically
// Each takes --json and ComfyUI's directory flags; FILE is a path or FOLDER/NAME as loaders
// name it ("checkpoints/sd15.safetensors").
#pragma once
#include <CLI/CLI.hpp>

#include <functional>
#include <string>

#include "cli/app.h"

namespace comfy {

CLI::App* add_models_command(CLI::App& app, int* exit_code);

// How every `models` subcommand runs `run`: logs go to stderr at the --verbose level (warnings by
// default); an exception becomes "models NAME: message" on stderr (and {"error": {type, message}}
// on stdout with --json) and exit code 1. Returns the exit code.
int run_models_subcommand(const std::string& name, bool json_output, const DirectoryArgs& dirs,
                          const std::function<int()>& run);

}  // namespace comfy
