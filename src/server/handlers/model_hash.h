// Background hashing of model files (issue 6). routes.cpp registers them with one line:
//   POST /models/hash        {"folder", "filename"} or {"path": "FOLDER/NAME"} -> the job {id, status, ...};
//                            a file already queued or running gives its job again
//   GET  /models/hash/{id}   the job: {id, folder, filename, status: queued|running|done|error,
//                            progress: {bytes, total}, sha256, autov2, cached, error}
// One worker thread hashes the jobs in order (one file at a time: kind to spinning disks), through
// the server's hash cache (<user directory>/__comfycpp/model_hashes.sqlite; a file whose size and
// mtime are unchanged answers from it). Progress goes to every WebSocket client as "model_hash"
// messages with the job's JSON, at most one per percent, and once when it ends.
#pragma once
#include <vector>

#include "server/handlers/model_downloads.h"

namespace comfy::server {

std::vector<HandlerRoute> model_hash_routes(Context& ctx);

}  // namespace comfy::server
