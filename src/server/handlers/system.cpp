// /, /ws, /system_stats, /features, /extensions, /embeddings, the custom-node helpers (empty:
// no custom nodes yet) and the /internal routes.
#include <sys/ioctl.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>

#include "server/handlers/handlers.h"

namespace comfy::server {

namespace fs = std::filesystem;

namespace {

// psutil.virtual_memory(): total and available, from /proc/meminfo.
std::pair<int64_t, int64_t> memory() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  int64_t value = 0, total = 0, available = 0;
  std::string unit;
  while (in >> key >> value) {
    std::getline(in, unit);
    if (key == "MemTotal:") total = value * 1024;
    else if (key == "MemAvailable:") available = value * 1024;
  }
  return {total, available};
}

}  // namespace

Response get_root(Context&, Request&) {
  // The web UI is a later issue; until it lands, / says so instead of serving a stand-in page.
  return Response::text("404: the comfy.cpp web UI is not built yet; the ComfyUI API is served under /api/", 404);
}

Response get_ws(Context&, Request& req) {
  std::string sid = req.query_value("clientId").value_or("");
  if (sid.empty()) sid = new_sid();
  return Response::upgrade(sid);
}

Response get_system_stats(Context& ctx, Request&) {
  auto [total, available] = memory();
  json argv = json::array();
  for (auto& a : ctx.options.argv) argv.push_back(a);
  json system{{"os", "linux"},
              {"ram_total", total},
              {"ram_free", available},
              {"comfyui_version", "0.8.0"},
              {"required_frontend_version", "1.35.9"},
              {"installed_templates_version", nullptr},
              {"required_templates_version", "0.7.67"},
              {"python_version", "comfy.cpp (native C++; no Python)"},
              {"pytorch_version", ctx.options.pytorch_version},
              {"embedded_python", false},
              {"argv", argv}};
  json devices = ctx.options.devices ? ctx.options.devices() : json::array();
  if (devices.empty())
    devices.push_back(json{{"name", "cpu"},
                           {"type", "cpu"},
                           {"index", nullptr},
                           {"vram_total", total},
                           {"vram_free", available},
                           {"torch_vram_total", total},
                           {"torch_vram_free", available}});
  return Response::json_body(json{{"system", system}, {"devices", devices}});
}

Response get_features(Context& ctx, Request&) { return Response::json_body(ctx.features()); }

Response get_extensions(Context&, Request&) { return Response::json_body(json::array()); }

Response get_embeddings(Context& ctx, Request&) {
  json out = json::array();
  for (auto& f : ctx.folders.get_filename_list("embeddings")) {
    fs::path p(f);
    out.push_back((p.parent_path() / p.stem()).string());
  }
  return Response::json_body(out);
}

Response get_workflow_templates(Context&, Request&) { return Response::json_body(json::object()); }
Response get_i18n(Context&, Request&) { return Response::json_body(json::object()); }
Response get_global_subgraphs(Context&, Request&) { return Response::json_body(json::object()); }
Response get_global_subgraph(Context&, Request&) { return Response::json_body(nullptr); }

Response get_internal_logs(Context& ctx, Request&) { return Response::json_body(ctx.logs.text()); }

Response get_internal_logs_raw(Context& ctx, Request&) {
  winsize ws{};
  int cols = 80, rows = 24;
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) cols = ws.ws_col, rows = ws.ws_row;
  return Response::json_body(json{{"entries", ctx.logs.entries()}, {"size", {{"cols", cols}, {"rows", rows}}}});
}

Response patch_internal_logs_subscribe(Context&, Request& req) {
  json data = body_json(req);
  // KeyError when either key is missing, as json_data["clientId"] in ComfyUI.
  if (!data.is_object() || !data.contains("clientId") || !data.contains("enabled"))
    throw std::runtime_error("KeyError: clientId/enabled");
  return Response::empty(200);
}

Response get_internal_folder_paths(Context& ctx, Request&) {
  json out = json::object();
  for (auto& name : ctx.folders.folder_names()) {
    json dirs = json::array();
    for (auto& p : ctx.folders.get_folder_paths(name)) dirs.push_back(p.string());
    out[name] = dirs;
  }
  return Response::json_body(out);
}

Response get_internal_files(Context& ctx, Request& req) {
  std::string type = req.param("directory_type");
  if (type != "output" && type != "input" && type != "temp")
    return Response::json_body(json{{"error", "Invalid directory type"}}, 400);
  fs::path dir = *ctx.folders.directory_by_type(type);
  std::vector<std::pair<double, std::string>> files;
  std::error_code ec;
  for (auto& e : fs::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    if (name.empty() || name[0] == '.' || !e.is_regular_file(ec)) continue;
    files.emplace_back(-file_time_seconds(e.path(), false), name);
  }
  std::stable_sort(files.begin(), files.end(), [](auto& a, auto& b) { return a.first < b.first; });
  json out = json::array();
  for (auto& [t, n] : files) out.push_back(n);
  return Response::json_body(out);
}

}  // namespace comfy::server
