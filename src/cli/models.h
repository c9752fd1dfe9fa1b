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

namespace comfy {

CLI::App* add_models_command(CLI::App& app, int* exit_code);

}  // namespace comfy
