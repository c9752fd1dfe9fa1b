// A digest of a model file's tensors only, so that editing its metadata (safetensors
// `__metadata__`, GGUF key-values), reordering its tensors or re-aligning them keeps its identity.
//
// SHA-256 over the tensors sorted by name (bytewise), each as: the name, NUL, the dtype as the file
// names it ("F16", "Q8_0", ...), NUL, the shape in PyTorch order as decimal numbers joined by ","
// ("" for a 0-dim tensor), NUL, the byte count as a u64 little-endian, then the raw bytes. The same
// weights stored in two formats (or two dtypes) therefore hash differently; re-tagging does not.
// tools/fixtures/make_gguf.py computes it independently for the GGUF test files.
#pragma once
#include <filesystem>
#include <string>

namespace comfy::io {

// For a .safetensors/.sft or GGUF file (told apart by the GGUF magic). Throws ComfyError naming
// the file for another format or a corrupt header.
std::string tensor_data_sha256(const std::filesystem::path& path);

}  // namespace comfy::io
