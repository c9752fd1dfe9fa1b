// Node declarations read back from a recorded /object_info answer. Validation needs nothing but
// declarations, so the real ComfyUI's 445 node classes can stand in for nodes we have not built
// yet when replaying the oracle's validation answers; and printing them again must give the
// recorded JSON back, which checks the /object_info printer on every shape ComfyUI uses.
#pragma once
#include "graph/registry.h"

namespace comfy::testing {

// A declaration equal to what `info` describes; its function raises (it is never run).
NodeDef node_def_from_object_info(const std::string& name, const json& info);

json load_json_file(const std::string& path);

}  // namespace comfy::testing
