// A minimal safetensors reader for test fixtures: the JSON header and raw little-endian F32
// tensors, nothing else. Test support only; src/io's loader will replace it.
#pragma once
#include <ATen/ATen.h>

#include <map>
#include <string>

namespace comfy::testing {

// Every tensor of the file by name; throws std::runtime_error on anything but F32 safetensors.
std::map<std::string, at::Tensor> read_safetensors_f32(const std::string& path);

}  // namespace comfy::testing
