// Where `embedding:NAME` is looked for (comfy/sd1_clip.py load_embed): in every embeddings
// directory and, recursively, every folder below it (symlinks followed), the path DIR/NAME
// itself, then DIR/NAME + ".safetensors", ".pt", ".bin". A NAME that leads outside DIR
// ("../x", an absolute path) is skipped. Reading the file is the model side's business.
#pragma once
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace comfy {

std::optional<std::filesystem::path> find_embedding_file(const std::vector<std::filesystem::path>& directories,
                                                         const std::string& name);

}  // namespace comfy
