// JSON text as Python's json.dumps writes it (aiohttp's json_response and ComfyUI's WebSocket
// messages): ", " and ": " separators, non-ASCII escaped as \uXXXX, NaN/Infinity literals.
#pragma once
#include <string>

#include "core/json.h"

namespace comfy::server {

std::string py_dumps(const json& value);

}  // namespace comfy::server
