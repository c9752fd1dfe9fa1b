// SHA-256 of a file, streamed (LoadImage/LoadLatent change fingerprints; model hashes later).
#pragma once
#include <filesystem>
#include <string>

namespace comfy::io {

// Lower-case hex digest of the file's bytes. Throws ComfyError (FileNotFoundError/OSError) when
// the file cannot be read.
std::string sha256_file_hex(const std::filesystem::path& path);

}  // namespace comfy::io
