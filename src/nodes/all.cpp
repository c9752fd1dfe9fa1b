#include "nodes/all.h"

namespace comfy {

void register_all_nodes(Registry& r) {
  register_sampling(r);
  register_loaders(r);
  register_lora(r);
  register_image(r);
  register_vae(r);
  register_latent(r);
  register_post_processing(r);
  register_mask(r);
  register_images(r);
  register_primitive(r);
  register_preview_any(r);
  register_string(r);
  register_logic(r);
  register_clip(r);
  register_conditioning(r);
  register_controlnet(r);
  register_canny(r);
  register_custom_sampler(r);
  register_upscale_model(r);
  register_loaders_extra(r);
  register_model_merging(r);
  register_model_saving(r);
}

}  // namespace comfy
