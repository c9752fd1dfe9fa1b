// GET/POST /history (+ /{prompt_id}) and GET /api/jobs (+ /{job_id}), ComfyUI's unified job view
// (comfy_execution/jobs.py).
#include <algorithm>

#include "server/handlers/handlers.h"

namespace comfy::server {

namespace {

// Python's int(text) for query parameters; throws (-> 500) like int() raising ValueError.
int64_t py_int_param(const std::string& s) {
  std::string t = s;
  while (!t.empty() && std::isspace(static_cast<unsigned char>(t.back()))) t.pop_back();
  size_t b = 0;
  while (b < t.size() && std::isspace(static_cast<unsigned char>(t[b]))) ++b;
  t = t.substr(b);
  std::string digits;
  for (size_t i = 0; i < t.size(); ++i)
    if (t[i] != '_' || (i > 0 && i + 1 < t.size() && std::isdigit((unsigned char)t[i - 1]) &&
                        std::isdigit((unsigned char)t[i + 1])))
      digits += t[i];
    else
      throw std::invalid_argument("ValueError: invalid literal for int()");
  size_t used = 0;
  if (digits.empty() || digits.find_first_not_of("+-0123456789") != std::string::npos)
    throw std::invalid_argument("ValueError: invalid literal for int()");
  int64_t v = std::stoll(digits, &used);
  if (used != digits.size()) throw std::invalid_argument("ValueError: invalid literal for int()");
  return v;
}

const std::vector<std::string> kJobStatuses = {"pending", "in_progress", "completed", "failed"};

json prune(json j) {
  json out = json::object();
  for (auto& [k, v] : j.items())
    if (!v.is_null()) out[k] = v;
  return out;
}

json get_path(const json& j, std::initializer_list<const char*> keys) {
  const json* cur = &j;
  for (const char* k : keys) {
    if (!cur->is_object() || !cur->contains(k)) return nullptr;
    cur = &(*cur)[k];
  }
  return *cur;
}

json queue_job(const json& item, const char* status) {
  const json& extra = item[3];
  return prune(json{{"id", item[1]},
                    {"status", status},
                    {"priority", item[0]},
                    {"create_time", get_path(extra, {"create_time"})},
                    {"outputs_count", 0},
                    {"workflow_id", get_path(extra, {"extra_pnginfo", "workflow", "id"})}});
}

bool previewable(const std::string& media_type, const json& item) {
  if (media_type == "images" || media_type == "video" || media_type == "audio") return true;
  std::string fmt = item.contains("format") && item["format"].is_string() ? item["format"].get<std::string>() : "";
  if (fmt.rfind("video/", 0) == 0 || fmt.rfind("audio/", 0) == 0) return true;
  std::string name = item.contains("filename") && item["filename"].is_string() ? item["filename"].get<std::string>() : "";
  std::transform(name.begin(), name.end(), name.begin(), ::tolower);
  for (const char* ext : {".obj", ".fbx", ".gltf", ".glb"})
    if (name.size() >= std::strlen(ext) && name.compare(name.size() - std::strlen(ext), std::string::npos, ext) == 0)
      return true;
  return false;
}

json history_job(const std::string& id, const json& entry, bool include_outputs) {
  const json& prompt_tuple = entry["prompt"];
  const json& extra = prompt_tuple[3];
  json status_info = entry.value("status", json::object());
  std::string status_str = status_info.is_object() && status_info.contains("status_str") && status_info["status_str"].is_string()
                               ? status_info["status_str"].get<std::string>() : "";
  std::string status = status_str == "error" ? "failed" : "completed";
  json outputs = entry.value("outputs", json::object());
  int64_t count = 0;
  json preview, fallback;
  for (auto& [node_id, node_out] : outputs.items()) {
    if (!node_out.is_object()) continue;
    for (auto& [media, items] : node_out.items()) {
      if (media == "animated" || !items.is_array()) continue;
      for (auto& item : items) {
        if (!item.is_object()) continue;
        ++count;
        if (preview.is_null() && previewable(media, item)) {
          json enriched = item;
          enriched["nodeId"] = node_id;
          enriched["mediaType"] = media;
          if (item.value("type", json()) == "output") preview = enriched;
          else if (fallback.is_null()) fallback = enriched;
        }
      }
    }
  }
  if (preview.is_null()) preview = fallback;
  json start, end, error;
  if (status_info.is_object() && status_info.contains("messages") && status_info["messages"].is_array()) {
    for (auto& m : status_info["messages"]) {
      if (!m.is_array() || m.size() < 2 || !m[1].is_object()) continue;
      std::string ev = m[0].is_string() ? m[0].get<std::string>() : "";
      if (ev == "execution_start") start = m[1].value("timestamp", json());
      else if (ev == "execution_success" || ev == "execution_error" || ev == "execution_interrupted") {
        end = m[1].value("timestamp", json());
        if (ev == "execution_error") error = m[1];
      }
    }
  }
  json job = prune(json{{"id", id},
                        {"status", status},
                        {"priority", prompt_tuple[0]},
                        {"create_time", get_path(extra, {"create_time"})},
                        {"execution_start_time", start},
                        {"execution_end_time", end},
                        {"execution_error", error},
                        {"outputs_count", count},
                        {"preview_output", preview},
                        {"workflow_id", get_path(extra, {"extra_pnginfo", "workflow", "id"})}});
  if (include_outputs) {
    job["outputs"] = outputs;
    job["execution_status"] = status_info;
    job["workflow"] = json{{"prompt", prompt_tuple[2]}, {"extra_data", extra}};
  }
  return job;
}

double num_or_zero(const json& j, const char* key) {
  return j.contains(key) && j[key].is_number() ? j[key].get<double>() : 0.0;
}

}  // namespace

Response get_history(Context& ctx, Request& req) {
  std::optional<int64_t> max_items;
  int64_t offset = -1;
  if (auto m = req.query_value("max_items")) max_items = py_int_param(*m);
  if (auto o = req.query_value("offset")) offset = py_int_param(*o);
  return Response::json_body(ctx.queue.get_history(std::nullopt, max_items, offset));
}

Response get_history_by_id(Context& ctx, Request& req) {
  return Response::json_body(ctx.queue.get_history(req.param("prompt_id")));
}

Response post_history(Context& ctx, Request& req) {
  json data = body_json(req);
  if (!data.is_object()) throw std::runtime_error("TypeError: body is not an object");
  if (data.contains("clear")) {
    const json& c = data["clear"];
    bool truthy = !(c.is_null() || c == false || (c.is_number() && c.get<double>() == 0) ||
                    ((c.is_string() || c.is_array() || c.is_object()) && c.empty()));
    if (truthy) ctx.queue.wipe_history();
  }
  if (data.contains("delete")) {
    const json& d = data["delete"];
    if (!d.is_array()) throw std::runtime_error("TypeError: delete is not a list");
    for (auto& id : d)
      if (id.is_string()) ctx.queue.delete_history_item(id.get<std::string>());
  }
  return Response::empty(200);
}

Response get_jobs(Context& ctx, Request& req) {
  auto lower = [](std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), ::tolower);
    return s;
  };
  std::string sort_by = lower(req.query_value("sort_by").value_or("created_at"));
  std::string sort_order = lower(req.query_value("sort_order").value_or("desc"));
  std::vector<std::string> filter = kJobStatuses;
  if (auto s = req.query_value("status"); s && !s->empty()) {
    filter.clear();
    std::vector<std::string> bad;
    size_t start = 0;
    while (start <= s->size()) {
      size_t comma = s->find(',', start);
      std::string part = s->substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      size_t b = part.find_first_not_of(" \t\n\r"), e = part.find_last_not_of(" \t\n\r");
      part = b == std::string::npos ? "" : lower(part.substr(b, e - b + 1));
      if (!part.empty()) {
        filter.push_back(part);
        if (std::find(kJobStatuses.begin(), kJobStatuses.end(), part) == kJobStatuses.end()) bad.push_back(part);
      }
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    if (!bad.empty()) {
      std::string list;
      for (auto& b : bad) list += (list.empty() ? "" : ", ") + b;
      return Response::json_body(
          json{{"error", "Invalid status value(s): " + list + ". Valid values: pending, in_progress, completed, failed"}},
          400);
    }
  }
  if (sort_by != "created_at" && sort_by != "execution_duration")
    return Response::json_body(json{{"error", "sort_by must be 'created_at' or 'execution_duration'"}}, 400);
  if (sort_order != "asc" && sort_order != "desc")
    return Response::json_body(json{{"error", "sort_order must be 'asc' or 'desc'"}}, 400);
  json limit;
  if (auto l = req.query_value("limit")) {
    try {
      limit = py_int_param(*l);
    } catch (const std::exception&) {
      return Response::json_body(json{{"error", "limit must be an integer"}}, 400);
    }
    if (limit.get<int64_t>() <= 0) return Response::json_body(json{{"error", "limit must be a positive integer"}}, 400);
  }
  int64_t offset = 0;
  if (auto o = req.query_value("offset")) {
    try {
      offset = std::max<int64_t>(0, py_int_param(*o));
    } catch (const std::exception&) {
      return Response::json_body(json{{"error", "offset must be an integer"}}, 400);
    }
  }
  auto wants = [&](const char* s) { return std::find(filter.begin(), filter.end(), s) != filter.end(); };
  json q = ctx.queue.queue_json();
  std::vector<json> jobs;
  if (wants("in_progress"))
    for (auto& item : q["queue_running"]) jobs.push_back(queue_job(item, "in_progress"));
  if (wants("pending"))
    for (auto& item : q["queue_pending"]) jobs.push_back(queue_job(item, "pending"));
  if (wants("completed") || wants("failed")) {
    json history = ctx.queue.get_history();  // kept alive: items() of a temporary would dangle
    for (auto& [id, entry] : history.items()) {
      bool failed = get_path(entry, {"status", "status_str"}) == "error";
      if ((failed && wants("failed")) || (!failed && wants("completed"))) jobs.push_back(history_job(id, entry, false));
    }
  }
  if (auto wf = req.query_value("workflow_id"); wf && !wf->empty())
    jobs.erase(std::remove_if(jobs.begin(), jobs.end(), [&](const json& j) { return j.value("workflow_id", json()) != *wf; }),
               jobs.end());
  auto key = [&](const json& j) {
    if (sort_by == "execution_duration") {
      double s = num_or_zero(j, "execution_start_time"), e = num_or_zero(j, "execution_end_time");
      return (s != 0 && e != 0) ? e - s : 0.0;
    }
    return num_or_zero(j, "create_time");
  };
  std::stable_sort(jobs.begin(), jobs.end(), [&](const json& a, const json& b) {
    return sort_order == "desc" ? key(a) > key(b) : key(a) < key(b);
  });
  int64_t total = static_cast<int64_t>(jobs.size());
  json page = json::array();
  for (int64_t i = offset; i < total && (limit.is_null() || static_cast<int64_t>(page.size()) < limit.get<int64_t>()); ++i)
    page.push_back(jobs[i]);
  bool has_more = offset + static_cast<int64_t>(page.size()) < total;
  return Response::json_body(json{{"jobs", page},
                                  {"pagination", {{"offset", offset}, {"limit", limit}, {"total", total}, {"has_more", has_more}}}});
}

Response get_job_by_id(Context& ctx, Request& req) {
  std::string id = req.param("job_id");
  json h = ctx.queue.get_history(id);
  if (h.contains(id)) return Response::json_body(history_job(id, h[id], true));
  json q = ctx.queue.queue_json();
  for (auto& item : q["queue_running"])
    if (item[1] == id) return Response::json_body(queue_job(item, "in_progress"));
  for (auto& item : q["queue_pending"])
    if (item[1] == id) return Response::json_body(queue_job(item, "pending"));
  return Response::json_body(json{{"error", "Job not found"}}, 404);
}

}  // namespace comfy::server
