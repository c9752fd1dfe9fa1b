// The whole route table on one screen. Every route exists under / and under /api/ (ComfyUI
// registers each route twice, so "/api/jobs" also answers at "/api/api/jobs"); /internal/* is
// not duplicated.
#include "server/routes.h"

#include <arpa/inet.h>
#include <netdb.h>

#include <algorithm>
#include <cctype>
#include <map>

#include <spdlog/spdlog.h>

#include "core/text.h"
#include "server/handlers/handlers.h"
#include "server/handlers/model_downloads.h"
#include "server/handlers/model_hash.h"
#include "server/handlers/static_files.h"

namespace comfy::server {

Response get_model_info(Context& ctx, Request& req);  // handlers/model_info.cpp

Router::Router(Context& ctx) : ctx_(ctx) {
  add("GET", "/ws", get_ws);
  add("GET", "/", get_front_end_index, false);  // the web UI (static_files.cpp)
  add("GET", "/embeddings", get_embeddings);
  add("GET", "/models", get_models);
  for (auto& r : model_download_routes(ctx_)) add(r.method, r.path, r.fn);  // handlers/model_downloads.cpp
  for (auto& r : model_hash_routes(ctx_)) add(r.method, r.path, r.fn);      // handlers/model_hash.cpp
  add("GET", "/models/info", get_model_info);  // handlers/model_info.cpp
  add("GET", "/models/{folder}", get_models_folder);
  add("GET", "/extensions", get_extensions);
  add("POST", "/upload/image", post_upload_image);
  add("POST", "/upload/mask", post_upload_mask);
  add("GET", "/view", get_view);
  add("GET", "/view_metadata/{folder_name}", get_view_metadata);
  add("GET", "/system_stats", get_system_stats);
  add("GET", "/features", get_features);
  add("GET", "/prompt", get_prompt);
  add("POST", "/prompt", post_prompt);
  add("GET", "/object_info", get_object_info);
  add("GET", "/object_info/{node_class}", get_object_info_node);
  add("GET", "/api/jobs", get_jobs);
  add("GET", "/api/jobs/{job_id}", get_job_by_id);
  add("GET", "/history", get_history);
  add("GET", "/history/{prompt_id}", get_history_by_id);
  add("POST", "/history", post_history);
  add("GET", "/queue", get_queue);
  add("POST", "/queue", post_queue);
  add("POST", "/interrupt", post_interrupt);
  add("POST", "/free", post_free);
  // app/user_manager.py and app/app_settings.py
  add("GET", "/users", get_users);
  add("POST", "/users", post_users);
  add("GET", "/settings", get_settings);
  add("GET", "/settings/{id}", get_setting);
  add("POST", "/settings", post_settings);
  add("POST", "/settings/{id}", post_setting);
  add("GET", "/userdata", get_userdata);
  add("GET", "/v2/userdata", get_userdata_v2);
  add("GET", "/userdata/{file}", get_userdata_file);
  add("POST", "/userdata/{file}", post_userdata_file);
  add("DELETE", "/userdata/{file}", delete_userdata_file);
  add("POST", "/userdata/{file}/move/{dest}", post_userdata_move);
  // app/model_manager.py, custom-node helpers (no custom nodes yet: empty answers)
  add("GET", "/experiment/models", get_experiment_models);
  add("GET", "/experiment/models/{folder}", get_experiment_models_folder);
  add("GET", "/workflow_templates", get_workflow_templates);
  add("GET", "/i18n", get_i18n);
  add("GET", "/global_subgraphs", get_global_subgraphs);
  add("GET", "/global_subgraphs/{id}", get_global_subgraph);
  // api_server/routes/internal (mounted at /internal, never under /api)
  add("GET", "/internal/logs", get_internal_logs, false);
  add("GET", "/internal/logs/raw", get_internal_logs_raw, false);
  add("PATCH", "/internal/logs/subscribe", patch_internal_logs_subscribe, false);
  add("GET", "/internal/folder_paths", get_internal_folder_paths, false);
  add("GET", "/internal/files/{directory_type}", get_internal_files, false);
  // Last: the web UI's files, for paths no API route claims.
  add("GET", "/{path:.*}", get_front_end_file, false);
}

namespace {

std::vector<std::string> split_path(const std::string& raw_path) {
  std::vector<std::string> out;
  size_t start = raw_path.empty() || raw_path[0] != '/' ? 0 : 1;
  while (true) {
    size_t slash = raw_path.find('/', start);
    out.push_back(raw_path.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return out;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// urllib's view of "host[:port]" (an authority): hostname lower-cased without brackets, port.
struct Authority {
  std::optional<std::string> hostname;
  bool has_port = false;
};
Authority parse_authority(std::string netloc) {
  Authority a;
  if (auto at = netloc.rfind('@'); at != std::string::npos) netloc = netloc.substr(at + 1);
  std::string host = netloc;
  if (!netloc.empty() && netloc[0] == '[') {
    auto close = netloc.find(']');
    host = netloc.substr(1, close == std::string::npos ? std::string::npos : close - 1);
    a.has_port = close != std::string::npos && close + 1 < netloc.size() && netloc[close + 1] == ':' &&
                 close + 2 < netloc.size();
  } else if (auto colon = netloc.rfind(':'); colon != std::string::npos) {
    host = netloc.substr(0, colon);
    a.has_port = colon + 1 < netloc.size();
  }
  host = ascii_lower(host);
  if (!host.empty()) a.hostname = host;
  return a;
}

// ComfyUI's is_loopback: an IP literal, or a name whose every resolved address is loopback.
bool is_loopback(const std::optional<std::string>& host) {
  if (!host) return false;
  in_addr v4{};
  in6_addr v6{};
  if (inet_pton(AF_INET, host->c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  if (inet_pton(AF_INET6, host->c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  static std::mutex cache_mutex;
  static std::map<std::string, bool> cache;
  {
    std::lock_guard lock(cache_mutex);
    if (auto it = cache.find(*host); it != cache.end()) return it->second;
  }
  bool loopback = false, decided = false;
  for (int family : {AF_INET, AF_INET6}) {
    if (decided) break;
    addrinfo hints{};
    hints.ai_family = family;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (getaddrinfo(host->c_str(), nullptr, &hints, &res) != 0) continue;
    for (addrinfo* p = res; p; p = p->ai_next) {
      bool lb = p->ai_family == AF_INET
                    ? (ntohl(reinterpret_cast<sockaddr_in*>(p->ai_addr)->sin_addr.s_addr) >> 24) == 127
                    : IN6_IS_ADDR_LOOPBACK(&reinterpret_cast<sockaddr_in6*>(p->ai_addr)->sin6_addr);
      if (!lb) {
        decided = true;
        break;
      }
      loopback = true;
    }
    freeaddrinfo(res);
  }
  std::lock_guard lock(cache_mutex);
  cache[*host] = loopback;
  return loopback;
}

void cache_control(const Request& req, Response& res) {
  std::string path = percent_decode(req.raw_path);
  std::string last = path.substr(path.rfind('/') + 1);
  auto setdefault = [&](const char* value) {
    if (!res.has_header("Cache-Control")) res.set_header("Cache-Control", value);
  };
  if (ends_with(path, ".js") || ends_with(path, ".css") || (last.rfind("index", 0) == 0 && ends_with(last, ".json"))) {
    setdefault("no-cache");
    return;
  }
  std::string lp = ascii_lower(path);
  for (const char* ext : {".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"}) {
    if (!ends_with(lp, ext)) continue;
    if (res.status == 404) setdefault("public, max-age=3600");
    else if ((res.status >= 200 && res.status <= 206) || res.status == 301 || res.status == 308)
      setdefault("public, max-age=86400");
    else if (res.status == 302 || res.status == 303 || res.status == 307) setdefault("no-cache");
    return;
  }
}

}  // namespace

void Router::add(const std::string& method, const std::string& path, Fn fn, bool api_too) {
  if (api_too) routes_.push_back(Route{method, split_path("/api" + path), fn});
  routes_.push_back(Route{method, split_path(path), fn});
}

bool Router::origin_refused(const Request& req) const {
  const std::string* host = req.header("host");
  const std::string* origin = req.header("origin");
  if (!host || !origin) return false;
  std::string host_domain = ascii_lower(*host);
  // urlparse(origin).netloc
  std::string o = *origin, netloc;
  if (auto scheme = o.find("//"); scheme != std::string::npos) {
    netloc = o.substr(scheme + 2);
    netloc = netloc.substr(0, netloc.find_first_of("/?#"));
  }
  Authority origin_auth = parse_authority(netloc);
  std::optional<std::string> origin_domain = ascii_lower(netloc);
  Authority host_auth = parse_authority(host_domain);
  std::optional<std::string> host_cmp = host_domain;
  bool loopback = is_loopback(host_auth.hostname);
  if (!origin_auth.has_port) host_cmp = host_auth.hostname;
  if (!host_auth.has_port) origin_domain = origin_auth.hostname;
  if (loopback && host_cmp && origin_domain && !host_cmp->empty() && !origin_domain->empty() &&
      *host_cmp != *origin_domain) {
    spdlog::warn("WARNING: request with non matching host and origin {} != {}, returning 403", *host_cmp,
                 *origin_domain);
    return true;
  }
  return false;
}

namespace {

bool match(const std::vector<std::string>& pattern, const std::vector<std::string>& segs,
           std::vector<std::pair<std::string, std::string>>& params) {
  for (size_t i = 0; i < pattern.size(); ++i) {
    const std::string& pat = pattern[i];
    bool is_param = pat.size() > 2 && pat.front() == '{' && pat.back() == '}';
    std::string name = is_param ? pat.substr(1, pat.size() - 2) : "";
    if (is_param && name.find(':') != std::string::npos) {  // {name:.*}: the rest of the path
      std::string rest;
      for (size_t k = i; k < segs.size(); ++k) rest += (k > i ? "/" : "") + segs[k];
      params.emplace_back(name.substr(0, name.find(':')), percent_decode(rest));
      return true;
    }
    if (i >= segs.size()) return false;
    if (is_param) {
      if (segs[i].empty()) return false;
      params.emplace_back(name, percent_decode(segs[i]));
    } else if (percent_decode(segs[i]) != pat) {
      return false;
    }
  }
  return segs.size() == pattern.size();
}

}  // namespace

Response Router::dispatch(Request& req) {
  std::vector<std::string> segs = split_path(req.raw_path);
  std::vector<std::string> allowed;
  for (auto& r : routes_) {
    std::vector<std::pair<std::string, std::string>> params;
    if (!match(r.segments, segs, params)) continue;
    if (r.method != req.method && !(r.method == "GET" && req.method == "HEAD")) {
      allowed.push_back(r.method);
      continue;
    }
    req.params = std::move(params);
    return r.fn(ctx_, req);
  }
  if (!allowed.empty()) return method_not_allowed(allowed);
  return not_found();
}

Response Router::handle(Request& req) {
  Response res;
  const auto& cors = ctx_.options.cors_origin;
  if (!cors && origin_refused(req)) {
    res = Response::empty(403);
  } else if (req.method == "OPTIONS") {
    res = Response::empty(200);
  } else {
    try {
      res = dispatch(req);
    } catch (const HttpError& e) {
      res = e.response;
    } catch (const std::exception& e) {
      // aiohttp's answer to an exception escaping a handler; several ComfyUI routes rely on it
      // (malformed JSON bodies, wrong types).
      spdlog::error("Error handling request {} {}: {}", req.method, req.target, e.what());
      res = internal_error();
    }
  }
  if (cors) {
    res.set_header("Access-Control-Allow-Origin", *cors);
    res.set_header("Access-Control-Allow-Methods", "POST, GET, DELETE, PUT, OPTIONS, PATCH");
    res.set_header("Access-Control-Allow-Headers", "Content-Type, Authorization");
    res.set_header("Access-Control-Allow-Credentials", "true");
  }
  cache_control(req, res);
  return res;
}

}  // namespace comfy::server
