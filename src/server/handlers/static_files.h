// The web UI: the built front end (web/dist) served from `--front-end-root` (ComfyUI's flag),
// index.html at `/`, everything else by path under that folder, never outside it.
#pragma once
#include <filesystem>

#include "server/context.h"

namespace comfy::server {

// The folder to serve; an empty path restores the default (web/dist next to the binary, or in
// the source tree above build/). Set once before the server starts.
void set_front_end_root(const std::filesystem::path& dir);
// The folder in use: the one set, else the first default that holds an index.html (may not exist).
std::filesystem::path front_end_root();

Response get_front_end_index(Context& ctx, Request& req);  // GET /
Response get_front_end_file(Context& ctx, Request& req);   // GET /{path:.*}, registered last

}  // namespace comfy::server
