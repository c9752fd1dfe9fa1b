// GET/POST /queue, POST /interrupt, POST /free.
#include <spdlog/spdlog.h>

#include "server/handlers/handlers.h"

namespace comfy::server {

namespace {

bool py_truthy(const json& v) {
  if (v.is_null()) return false;
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_number()) return v.get<double>() != 0;
  if (v.is_string() || v.is_array() || v.is_object()) return !v.empty();
  return true;
}

// Python iterates a dict by keys, a str by characters, a list by items.
std::vector<json> py_iter(const json& v) {
  std::vector<json> out;
  if (v.is_array()) {
    for (auto& x : v) out.push_back(x);
  } else if (v.is_object()) {
    for (auto& [k, x] : v.items()) out.emplace_back(k);
  } else if (v.is_string()) {
    for (char c : v.get<std::string>()) out.emplace_back(std::string(1, c));
  } else {
    throw std::runtime_error("TypeError: object is not iterable");
  }
  return out;
}

}  // namespace

Response get_queue(Context& ctx, Request&) { return Response::json_body(ctx.queue.queue_json()); }

Response post_queue(Context& ctx, Request& req) {
  json data = body_json(req);
  if (!data.is_object()) throw std::runtime_error("TypeError: body is not an object");
  if (data.contains("clear") && py_truthy(data["clear"])) ctx.queue.wipe_queue();
  if (data.contains("delete"))
    for (auto& id : py_iter(data["delete"]))
      if (id.is_string()) ctx.queue.delete_queue_item(id.get<std::string>());
  return Response::empty(200);
}

Response post_interrupt(Context& ctx, Request& req) {
  json data = json::object();
  try {
    data = json::parse(req.body);
  } catch (const json::parse_error&) {
  }
  if (!data.is_object()) throw std::runtime_error("AttributeError: body has no attribute 'get'");
  json prompt_id = data.value("prompt_id", json());
  if (py_truthy(prompt_id)) {
    if (prompt_id.is_string() && ctx.queue.is_running(prompt_id.get<std::string>())) {
      spdlog::info("Interrupting prompt {}", prompt_id.get<std::string>());
      ctx.executor.interrupt();
    } else {
      spdlog::info("Prompt {} is not currently running, skipping interrupt", py_str(prompt_id));
    }
  } else {
    spdlog::info("Global interrupt (no prompt_id specified)");
    ctx.executor.interrupt();
  }
  return Response::empty(200);
}

Response post_free(Context& ctx, Request& req) {
  json data = body_json(req);
  if (!data.is_object()) throw std::runtime_error("AttributeError: body has no attribute 'get'");
  json unload = data.value("unload_models", json(false)), free_memory = data.value("free_memory", json(false));
  if (py_truthy(unload)) ctx.queue.set_flag("unload_models", unload);
  if (py_truthy(free_memory)) ctx.queue.set_flag("free_memory", free_memory);
  return Response::empty(200);
}

}  // namespace comfy::server
