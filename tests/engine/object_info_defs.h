// Node declarations read back from a recorded /object_info answer. Validation needs nothing but
// declarations, so the real ComfyUI's 445 node classes can stand in for nodes we have not built
// yet when replaying the oracle's validation answers; and printing them again must give the
// recorded JSON back, which checks the /object_info printer on every shape ComfyUI uses.
#pragma once
#include <string>
#include <vector>

#include "graph/registry.h"

namespace comfy::testing {

// A declaration equal to what `info` describes; its function raises (it is never run).
NodeDef node_def_from_object_info(const std::string& name, const json& info);

json load_json_file(const std::string& path);

// The recorded oracle's node set: every class of its /object_info, our own node where we have
// one (with its validator), a declaration read back from the recording otherwise.
void add_recorded_nodes(Registry& r);

// The POST /prompt answers recorded from ComfyUI (tests/fixtures/validation/*.json), sorted.
std::vector<std::string> recorded_validation_cases();

}  // namespace comfy::testing
