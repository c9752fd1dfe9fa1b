// The model-download routes (model_downloads.h). One DownloadManager per server, owned by its
// Context and made on first use: its queue is <user directory>/__comfycpp/downloads.json, its options come from the
// environment (DownloadOptions::from_env), its progress goes to the WebSocket hub.
#include "server/handlers/model_downloads.h"

#include <spdlog/spdlog.h>

#include <cctype>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>

#include "core/text.h"
#include "core/error.h"
#include "graph/ui_workflow.h"
#include "models/image_workflow.h"
#include "models/missing_models.h"
#include "models/model_catalog.h"
#include "models/model_download.h"
#include "server/handlers/handlers.h"
#include "server/multipart.h"
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

// The request of POST /models/missing as JSON: a JSON body as it is; a PNG or WebP body
// (image/png, image/webp, or a multipart upload: the part named "image" or "file", else the first
// file) as {"workflow": <what the image carries>, "download": ?download=true}.
json missing_request(const Request& req) {
  const std::string* ct = req.header("content-type");
  const std::string type = ct ? ascii_lower(ct->substr(0, ct->find(';'))) : "";
  auto from_image = [&](const std::string& bytes, const std::string& what) {
    json body{{"workflow", image_workflow_document(bytes, what)}};
    auto d = req.query_value("download");
    body["download"] = d && (*d == "true" || *d == "1");
    return body;
  };
  if (type == "image/png" || type == "image/webp" || type == "application/octet-stream")
    return from_image(req.body, "the uploaded image");
  if (type == "multipart/form-data") {
    Multipart form = parse_multipart(req);
    const FormPart* part = form.get("image");
    if (!part) part = form.get("file");
    if (!part)
      for (auto& p : form.parts)
        if (p.is_file) {
          part = &p;
          break;
        }
    if (!part) throw ComfyError("ValueError", "the form has no image (a field named image or file)");
    json body = from_image(part->data, "the uploaded image" + (part->filename.empty() ? "" : " " + part->filename));
    if (auto d = form.value("download")) body["download"] = *d == "true" || *d == "1";
    return body;
  }
  if (is_png_bytes(req.body) || is_webp_bytes(req.body)) return from_image(req.body, "the uploaded image");
  try {
    return body_json(req);
  } catch (const std::exception&) {
    throw ComfyError("ValueError", "the body must be JSON, or a PNG or WebP image carrying a workflow");
  }
}

Response post_models_missing(Context& ctx, Request& req) {
  json body;
  try {
    body = missing_request(req);
  } catch (const std::exception& e) {
    return error(400, e.what());
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
    json report = missing_models_report(resolve_models(refs, ctx.folders, ro), warnings);
    annotate_missing_with_catalog(report, ModelCatalog::load(ctx.folders, {}, &warnings));
    return Response::json_body(report);
  } catch (const ComfyError& e) {
    return error(400, e.what());
  }
}

std::string sha256_hasher_for(const std::shared_ptr<HashCache>& cache, const fs::path& p) {
  if (cache) return cache->digest(p, "sha256", [](const fs::path& f) { return sha256_of_file(f); });
  return sha256_of_file(p);
}

// GET /models/catalog[?q=TEXT]: {"models": [entry + "installed": path|null], "warnings": [...]}.
Response get_models_catalog(Context& ctx, Request& req) {
  std::vector<std::string> warnings;
  ModelCatalog catalog = ModelCatalog::load(ctx.folders, {}, &warnings);
  json models = json::array();
  for (auto& e : catalog.search(req.query_value("q").value_or(""))) {
    json j = e.to_json();
    std::string path = catalog_entry_path(e, ctx.folders);
    j["installed"] = path.empty() ? json(nullptr) : json(path);
    models.push_back(j);
  }
  return Response::json_body(json{{"models", models}, {"warnings", warnings}});
}

// POST /models/catalog/install {name}: {status: present|queued|failed, download_id, path,
// message, entry, download}.
Response post_models_catalog_install(Context& ctx, Request& req) {
  json body;
  try {
    body = body_json(req);
  } catch (const std::exception&) {
    return error(400, "the body must be JSON");
  }
  if (!body.is_object() || !body.contains("name") || !body["name"].is_string())
    return error(400, "give name (a catalog entry's name)");
  const std::string name = body["name"].get<std::string>();
  ModelCatalog catalog = ModelCatalog::load(ctx.folders);
  const CatalogEntry* entry = catalog.find(name);
  if (!entry) return error(404, "the model catalog has no entry named '" + name + "'");
  try {
    auto& d = downloads(ctx);
    auto cache = d.hashes;
    CatalogInstall result = install_catalog_entry(*entry, ctx.folders, *d.manager,
                                                  [cache](const fs::path& p) { return sha256_hasher_for(cache, p); });
    json out = result.to_json();
    out["entry"] = entry->to_json();
    if (!result.download_id.empty())
      if (auto st = d.manager->get(result.download_id)) out["download"] = st->to_json();
    return Response::json_body(out, result.status == "failed" ? 409 : 200);
  } catch (const ComfyError& e) {
    return error(e.type() == "OSError" ? 507 : 400, e.what());
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
      {"GET", "/models/catalog", get_models_catalog},
      {"POST", "/models/catalog/install", post_models_catalog_install},
  };
}

}  // namespace comfy::server
