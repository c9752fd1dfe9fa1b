#include "nodes/all.h"

namespace comfy {

void register_all_nodes(Registry& r) {
  register_primitive(r);
  register_preview_any(r);
}

}  // namespace comfy
