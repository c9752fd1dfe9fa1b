#include "nodes/all.h"

namespace comfy {

void register_all_nodes(Registry& r) {
  register_image(r);
  register_post_processing(r);
  register_mask(r);
  register_images(r);
  register_primitive(r);
  register_preview_any(r);
  register_string(r);
  register_logic(r);
}

}  // namespace comfy
