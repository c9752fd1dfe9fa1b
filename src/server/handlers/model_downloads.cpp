// The model-download routes (model_downloads.h). One DownloadManager per server, owned by its
// Context and made on first use: its queue is <user directory>/__comfycpp/downloads.json, its options come from the
// environment (DownloadOptions::from_env), its progress goes to the WebSocket hub.
#include "server/handlers/model_downloads.h"

#include <spdlog/spdlog.h>

#include <fstream>
#include <map>
#include <memory>
#include <mutex>

#include "core/error.h"
#include "graph/ui_workflow.h"
#include "models/missing_models.h"
#include "models/model_download.h"
#include "server/handlers/handlers.h"
#include "store/hash_cache.h"

namespace comfy::server {

struct ModelDownloads {
  std::unique_ptr<DownloadManager> manager;
  std::shared_ptr<HashCache> hashes;
};

namespace {

ModelDownloads& downloads(Context& ctx) {
  std::lock_guard lock(ctx.model_downloads_mutex);
  if (!ctx.model_downloads) {
    auto d = std::make_shared<ModelDownloads>();
    DownloadOptions o = DownloadOptions::from_env(ctx.folders.user_directory() / "__comfycpp" / "download_tokens.json");
    o.queue_file = ctx.folders.user_directory() / "__comfycpp" / "downloads.json";
    d->manager = std::make_unique<DownloadManager>(ctx.folders, o);
    WsHub* hub = &ctx.hub;
    d->manager->set_listener([hub](const DownloadState& s) { hub->send("asset_download", s.asset_download_message(), ""); });
    try {
      d->hashes = std::make_shared<HashCache>(ctx.folders.user_directory() / "__comfycpp" / "model_hashes.sqlite");
    } catch (const std::exception& e) {
      spdlog::warn("model hash cache unavailable: {}", e.what());
    }
    ctx.model_downloads = std::move(d);
  }
  return *ctx.model_downloads;
}

namespace fs = std::filesystem;

Response error(int status, const std::string& message) {
  return Response::json_body(json{{"error", message}}, status);
}

Response post_models_download(Context& ctx, Request& req) {
  json body;
  try {
    body = body_json(req);
  } catch (const std::exception&) {
    return error(400, "the body must be JSON");
  }
  if (!body.is_object() || !body.contains("url") || !body["url"].is_string() || !body.contains("directory") ||
      !body["directory"].is_string())
    return error(400, "give url and directory (a model folder name)");
  DownloadRequest r;
  r.url = body["url"].get<std::string>();
  r.directory = body["directory"].get<std::string>();
  r.filename = body.value("filename", "");
  r.sha256 = body.value("sha256", "");
  if (body.contains("size") && body["size"].is_number_unsigned()) r.size = body["size"].get<uint64_t>();
  try {
    auto& d = downloads(ctx);
    std::string id = d.manager->enqueue(r);
    return Response::json_body(d.manager->get(id)->to_json());
  } catch (const ComfyError& e) {
    return error(e.type() == "OSError" ? 507 : 400, e.what());
  }
}

Response get_models_downloads(Context& ctx, Request&) {
  json out = json::array();
  for (auto& s : downloads(ctx).manager->list()) out.push_back(s.to_json());
  return Response::json_body(out);
}

Response get_models_download(Context& ctx, Request& req) {
  auto s = downloads(ctx).manager->get(req.param("id"));
  if (!s) return error(404, "no download with id '" + req.param("id") + "'");
  return Response::json_body(s->to_json());
}

Response post_models_download_cancel(Context& ctx, Request& req) {
  auto& d = downloads(ctx);
  if (!d.manager->get(req.param("id"))) return error(404, "no download with id '" + req.param("id") + "'");
  return Response::json_body(json{{"cancelled", d.manager->cancel(req.param("id"))}});
}

Response post_models_missing(Context& ctx, Request& req) {
  json body;
  try {
    body = body_json(req);
  } catch (const std::exception&) {
    return error(400, "the body must be JSON");
  }
  if (!body.is_object() || !body.contains("workflow") || !body["workflow"].is_object())
    return error(400, "give workflow (an API prompt, a UI workflow or a POST /prompt body)");
  try {
    auto& d = downloads(ctx);
    std::vector<std::string> warnings;
    auto refs = collect_model_references(body["workflow"], &ctx.registry, &ctx.services, &warnings);
    ResolveOptions ro;
    ro.download = body.value("download", false);
    ro.wait_for_downloads = false;
    ro.downloads = d.manager.get();
    if (auto cache = d.hashes) {
      ro.hasher = [cache](const fs::path& p, const std::string& algo) -> std::string {
        if (algo != "sha256") return "";
        return cache->digest(p, "sha256", [](const fs::path& f) { return sha256_of_file(f); });
      };
    }
    return Response::json_body(missing_models_report(resolve_models(refs, ctx.folders, ro), warnings));
  } catch (const ComfyError& e) {
    return error(400, e.what());
  }
}

}  // namespace

std::vector<HandlerRoute> model_download_routes(Context& ctx) {
  std::error_code ec;
  fs::path queue = ctx.folders.user_directory() / "__comfycpp" / "downloads.json";
  if (fs::exists(queue, ec)) {
    try {
      std::ifstream in(queue, std::ios::binary);
      json doc = json::parse(in);
      bool unfinished = false;
      for (auto& e : doc.value("downloads", json::array()))
        if (e.value("status", "") == "queued" || e.value("status", "") == "running") unfinished = true;
      if (unfinished) downloads(ctx);
    } catch (const std::exception& e) {
      spdlog::warn("download queue {} not resumed: {}", queue.string(), e.what());
    }
  }
  return {
      {"POST", "/models/download", post_models_download},
      {"GET", "/models/downloads", get_models_downloads},
      {"GET", "/models/downloads/{id}", get_models_download},
      {"POST", "/models/downloads/{id}/cancel", post_models_download_cancel},
      {"POST", "/models/missing", post_models_missing},
  };
}

}  // namespace comfy::server
