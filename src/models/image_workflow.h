// The ComfyUI workflow an image carries, read from its bytes without decoding the picture (no
// torch, for the server's POST /models/missing): PNG tEXt / iTXt / zTXt chunks and SaveAnimatedPNG's
// "comf" chunks; WebP EXIF ASCII entries "prompt:{...}", "workflow:{...}" (SaveAnimatedWEBP).
#pragma once
#include <map>
#include <string>

#include "core/json.h"

namespace comfy {

bool is_png_bytes(const std::string& bytes);
bool is_webp_bytes(const std::string& bytes);

// key -> text of every metadata entry ("prompt", "workflow", ...); empty when there is none.
// Throws ComfyError (ValueError) for bytes that are not a PNG or WebP, or a truncated PNG.
std::map<std::string, std::string> image_text_metadata(const std::string& bytes, const std::string& what);

// What collect_model_references reads: {"prompt": ..., "extra_data": {"extra_pnginfo": {...}}} when
// the image has a prompt, else its UI workflow. Throws ComfyError (ValueError) naming `what` when
// the image carries neither or they are not JSON.
json image_workflow_document(const std::string& bytes, const std::string& what);

}  // namespace comfy
