// What many node families share: ComfyUI's nodes.MAX_RESOLUTION and the folder registry of the
// running application.
#pragma once
#include <cstdint>

#include "core/error.h"
#include "graph/services.h"
#include "models/folder_paths.h"

namespace comfy {

inline constexpr int64_t kMaxResolution = 16384;  // nodes.MAX_RESOLUTION

// The application's folders; a RuntimeError when the services were built without them.
inline const FolderPaths& folders(const Services& s) {
  if (!s.folders) throw ComfyError("RuntimeError", "no folders configured");
  return *s.folders;
}

}  // namespace comfy
