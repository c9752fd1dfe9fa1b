// Every node family, one register function each (all.cpp calls them family by family; ComfyUI's
// /object_info interleaves some families, so the order of classes differs slightly). Adding a
// family means one line here and in all.cpp.
#pragma once
#include "graph/registry.h"

namespace comfy {

void register_loaders(Registry& r);
void register_lora(Registry& r);
void register_image(Registry& r);
void register_post_processing(Registry& r);
void register_mask(Registry& r);
void register_primitive(Registry& r);
void register_images(Registry& r);
void register_preview_any(Registry& r);
void register_string(Registry& r);
void register_logic(Registry& r);
void register_clip(Registry& r);
void register_conditioning(Registry& r);
void register_controlnet(Registry& r);
void register_canny(Registry& r);
void register_sampling(Registry& r);
void register_custom_sampler(Registry& r);
void register_upscale_model(Registry& r);

void register_vae(Registry& r);
void register_latent(Registry& r);
void register_model_merging(Registry& r);
void register_model_saving(Registry& r);
void register_loaders_extra(Registry& r);

void register_all_nodes(Registry& r);

}  // namespace comfy
