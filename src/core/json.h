// JSON as ComfyUI speaks it: objects keep insertion order (Python dicts do), so what we emit
// reads the same as what ComfyUI emits.
#pragma once
#include <nlohmann/json.hpp>

namespace comfy {
using json = nlohmann::ordered_json;

// Python's str() of a JSON scalar: ComfyUI's messages embed values this way
// ("Value 10001 bigger than max of 10000", "True", "0.5", "['a', 'b']").
std::string py_str(const json& v);
// Python's repr(): strings quoted with single quotes (as in "'foo' not in [...]").
std::string py_repr(const json& v);
}  // namespace comfy
