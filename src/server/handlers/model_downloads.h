// The model-download routes (issue 6): downloads done by the server and missing-model checks.
// routes.cpp registers them with one line, before /models/{folder}:
//   POST /models/download                {url, directory, filename?, sha256?, size?} -> the download
//   GET  /models/downloads               every download (queued, running, finished)
//   GET  /models/downloads/{id}          one download
//   POST /models/downloads/{id}/cancel   {"cancelled": bool}
//   POST /models/missing                 {workflow, download?} -> the resolution report; or a PNG /
//                                        WebP body (image/png, image/webp, multipart "image") carrying
//                                        a workflow, with ?download=true
//   GET  /models/catalog[?q=TEXT]        {"models": [catalog entries + "installed"], "warnings"}
//   POST /models/catalog/install         {name} -> {status: present|queued|failed, download_id, ...}
// Progress goes to every WebSocket client as "asset_download" messages (the ComfyUI frontend's
// shape: task_id, asset_name, bytes_total, bytes_downloaded, progress, status, error).
#pragma once
#include <string>
#include <vector>

#include "server/context.h"
#include "server/http.h"

namespace comfy::server {

struct HandlerRoute {
  const char* method;
  const char* path;
  Response (*fn)(Context&, Request&);
};

// The routes; when `ctx`'s persisted download queue has unfinished downloads, the manager starts
// now and resumes them (otherwise on the first request).
std::vector<HandlerRoute> model_download_routes(Context& ctx);

}  // namespace comfy::server
