// Every node family, registered in ComfyUI's /object_info order (core nodes first, then the
// comfy_extras families in load order). Adding a family means one line here and in all.cpp.
#pragma once
#include "graph/registry.h"

namespace comfy {

void register_primitive(Registry& r);
void register_preview_any(Registry& r);

void register_all_nodes(Registry& r);

}  // namespace comfy
