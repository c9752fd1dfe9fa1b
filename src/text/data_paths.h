// Where the read-only data the program ships (the CLIP vocabulary in data/clip/, later other
// tokenizers) is found at run time. The first of these that holds the requested file wins:
//   1. $COMFYCPP_DATA_DIR (set it for an installation in an unusual place);
//   2. <directory of the executable>/data         (a relocatable bundle: bin and data together);
//   3. <directory of the executable>/../data      (the build tree: build/comfycpp -> data/);
//   4. <directory of the executable>/../share/comfycpp/data   (an install prefix);
//   5. the source tree's data/ as configured at build time (COMFY_SOURCE_DATA_DIR), so binaries
//      in any build directory of a checkout (tests included) find it.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

namespace comfy {

// The directories searched, in order (existing or not).
std::vector<std::filesystem::path> data_search_path();
// The full path of `relative` (e.g. "clip/vocab.json") in the first directory that has it;
// throws ComfyError (FileNotFoundError) listing the directories searched when none has it.
std::filesystem::path find_data_path(const std::string& relative);

}  // namespace comfy
