// What ComfyUI's image savers share (nodes.py SaveImage and comfy_api's ImageSaveHelper): IMAGE
// tensors to 8-bit pixels, the prompt/workflow metadata as Python's json.dumps writes it, and
// the ui entries. Used by image.cpp and images.cpp.
#pragma once
#include <ATen/ATen.h>

#include <string>
#include <utility>
#include <vector>

#include "core/json.h"
#include "graph/node_def.h"

namespace comfy {

// One [H,W,C] image as interleaved 8-bit pixels: uint8(clip(255*x, 0, 255)), truncated.
std::vector<uint8_t> image_to_u8(const at::Tensor& hwc);
// The IMAGE input of a saver, checked to be [B,H,W,C] with 1..4 channels and B >= 1.
at::Tensor image_batch_for_saving(const NodeInputs& in, const char* name);
// Python's json.dumps(v) with its defaults (", " and ": " separators, ASCII escapes).
std::string python_json_dumps(const json& v);
// (key, json text) pairs: "prompt" first when the PROMPT is not None, then every extra_pnginfo
// key; empty when metadata is disabled.
std::vector<std::pair<std::string, std::string>> save_metadata(const NodeInputs& in, bool disable_metadata);
json saved_result(const std::string& filename, const std::string& subfolder, const std::string& type);

}  // namespace comfy
