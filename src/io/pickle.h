// PyTorch checkpoints (.ckpt, .pt, .pth, .bin) read through a restricted unpickler that never
// executes anything: the only globals a file may name are the ones torch.save uses to rebuild
// tensors (torch._utils._rebuild_tensor_v2 and friends, the torch.*Storage types,
// collections.OrderedDict, torch.Size, _codecs.encode). Any other global (os.system,
// builtins.eval, posix.system, ...) is refused with a ComfyError naming the file and the global,
// before anything is called -- as torch.load(weights_only=True) refuses it.
//
// Both of torch.save's layouts are read:
//   zip (PyTorch >= 1.6): a zip of stored entries <name>/data.pkl, <name>/data/<key> (one per
//       storage), <name>/version [, <name>/byteorder];
//   legacy (_use_new_zipfile_serialization=False): pickles of the magic number, the protocol
//       version and sys_info, then the object, then the list of storage keys, then each storage
//       as a little-endian int64 element count followed by its bytes.
// The file is memory-mapped; tensors are views into the mapping (they keep it alive, and must
// never be written in place) when their storage is aligned for the dtype, else copies.
#pragma once
#include <ATen/ATen.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "core/json.h"

namespace comfy::io {

struct PickleCheckpoint {
  std::string format;  // "zip" or "legacy"
  // The tensors after ComfyUI's load_torch_file unwrapping ("state_dict" when present, else the
  // only value when the top-level dict has a single dict value), nested dicts flattened with
  // ".", in the order the file lists them.
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  // The other plain values next to them (ints, floats, strings, booleans), flattened the same
  // way, plus the top-level plain values outside an unwrapped "state_dict" (e.g. global_step).
  json extra = json::object();
};

// .ckpt, .pt, .pth, .bin, .pkl (lower-cased extension).
bool is_pickle_extension(const std::filesystem::path& path);

// Reads a torch.save file. Throws ComfyError naming the file: "UnpicklingError" for a refused
// global or a corrupt pickle, "RuntimeError" for a file that is not a PyTorch checkpoint or is
// truncated, "FileNotFoundError" when it cannot be opened.
PickleCheckpoint load_pickle_checkpoint(const std::filesystem::path& path);

}  // namespace comfy::io
