// GET /prompt (queue status) and POST /prompt (validate and enqueue), with ComfyUI's exact
// answers, including the Python behaviours clients can observe: a body that is not an object,
// a node that is not an object, the counter that grows even for rejected prompts.
#include <chrono>

#include <spdlog/spdlog.h>

#include "graph/validation.h"
#include "server/handlers/handlers.h"

namespace comfy::server {

namespace {

const char* const kSensitiveKeys[] = {"auth_token_comfy_org", "api_key_comfy_org"};

// Python's `key in value` for the JSON types; nullopt where Python raises TypeError.
std::optional<bool> py_contains(const json& value, const std::string& key) {
  if (value.is_object()) return value.contains(key);
  if (value.is_array()) {
    for (auto& v : value)
      if (v.is_string() && v.get_ref<const std::string&>() == key) return true;
    return false;
  }
  if (value.is_string()) return value.get_ref<const std::string&>().find(key) != std::string::npos;
  return std::nullopt;
}

[[noreturn]] void python_type_error(const std::string& what) { throw std::runtime_error("TypeError: " + what); }

// The steps of ComfyUI's validate_prompt that crash on malformed prompts before any error object
// is built (-> aiohttp's plain-text 500); nothing is thrown where validation answers with a 400.
void check_prompt_shape(const json& prompt, const Registry& registry) {
  if (prompt.is_array() || (prompt.is_string() && !prompt.get_ref<const std::string&>().empty())) {
    // `for x in prompt: prompt[x]` indexes a list or str with an element.
    if (!prompt.empty()) python_type_error("list/str indices must be integers or slices");
    return;
  }
  if (prompt.is_string() || (prompt.is_array() && prompt.empty())) return;
  if (!prompt.is_object()) python_type_error("object is not iterable");
  for (auto& [id, node] : prompt.items()) {
    auto has = py_contains(node, "class_type");
    if (!has) python_type_error("argument of type is not iterable");
    if (!*has) return;  // validation: "missing the class_type property"
    if (!node.is_object()) python_type_error("indices must be integers");
    const json& ct = node["class_type"];
    if (ct.is_object() || ct.is_array()) python_type_error("unhashable type");
    if (!ct.is_string() || !registry.find(ct.get<std::string>())) return;  // "does not exist"
  }
}

// partial_execution_targets as Python's `x in targets` sees it, for every node id.
std::optional<std::vector<std::string>> partial_targets(const json& prompt, const json& targets) {
  if (targets.is_null()) return std::nullopt;
  std::vector<std::string> out;
  if (!prompt.is_object()) return out;
  for (auto& [id, node] : prompt.items()) {
    auto in = py_contains(targets, id);
    if (!in) python_type_error("argument of type is not iterable");
    if (*in) out.push_back(id);
  }
  return out;
}

}  // namespace

Response get_prompt(Context& ctx, Request&) { return Response::json_body(ctx.queue_info()); }

Response post_prompt(Context& ctx, Request& req) {
  spdlog::info("got prompt");
  json data = body_json(req);

  auto has_number = py_contains(data, "number");
  if (!has_number) python_type_error("argument of type is not iterable");
  json number;
  if (*has_number) {
    if (!data.is_object()) python_type_error("string indices must be integers");
    const json& n = data["number"];
    if (n.is_number()) number = n.get<double>();
    else if (n.is_boolean()) number = n.get<bool>() ? 1.0 : 0.0;
    else if (n.is_string()) {
      try {
        size_t used = 0;
        std::string s = n.get<std::string>();
        number = std::stod(s, &used);
        if (used != s.size()) throw std::invalid_argument("trailing");
      } catch (const std::exception&) {
        throw std::runtime_error("ValueError: could not convert string to float");
      }
    } else {
      python_type_error("float() argument must be a string or a real number");
    }
  } else {
    bool front = false;
    if (*py_contains(data, "front")) {
      if (!data.is_object()) python_type_error("string indices must be integers");
      const json& f = data["front"];
      front = !(f.is_null() || (f.is_boolean() && !f.get<bool>()) || (f.is_number() && f.get<double>() == 0) ||
                ((f.is_string() || f.is_array() || f.is_object()) && f.empty()));
    }
    double n = ctx.queue.next_number(front);
    number = static_cast<int64_t>(n);
  }

  if (!*py_contains(data, "prompt")) {
    json error{{"type", "no_prompt"}, {"message", "No prompt provided"}, {"details", "No prompt provided"},
               {"extra_info", json::object()}};
    return Response::json_body(json{{"error", error}, {"node_errors", json::object()}}, 400);
  }
  if (!data.is_object()) python_type_error("indices must be integers");

  json prompt = data["prompt"];
  std::string prompt_id = data.contains("prompt_id") ? py_str(data["prompt_id"]) : new_uuid4();
  check_prompt_shape(prompt, ctx.registry);
  std::optional<std::vector<std::string>> targets;
  if (data.contains("partial_execution_targets"))
    targets = partial_targets(prompt, data["partial_execution_targets"]);
  if (!prompt.is_object()) prompt = json::object();  // an empty list or str: no outputs
  ValidationResult valid = validate_prompt(ctx.registry, ctx.services, prompt, targets);

  json extra_data = data.contains("extra_data") ? data["extra_data"] : json::object();
  if (data.contains("client_id")) {
    if (!extra_data.is_object()) python_type_error("object does not support item assignment");
    extra_data["client_id"] = data["client_id"];
  }
  if (!valid.ok) {
    spdlog::warn("invalid prompt: {}", valid.error.value("message", ""));
    return Response::json_body(valid.error_body(), 400);
  }
  if (!extra_data.is_object()) python_type_error("object does not support item assignment");

  QueueItem item;
  for (const char* key : kSensitiveKeys) {
    if (extra_data.contains(key)) {
      item.sensitive[key] = extra_data[key];
      extra_data.erase(key);
    }
  }
  extra_data["create_time"] = now_ms();
  item.number = number.get<double>();
  item.prompt_id = prompt_id;
  item.prompt = prompt;
  item.extra_data = extra_data;
  item.outputs = valid.outputs;
  ctx.response_gate.hold(prompt_id);
  ctx.queue.put(std::move(item));
  Response res = Response::json_body(json{{"prompt_id", prompt_id}, {"number", number}, {"node_errors", valid.node_errors}});
  res.on_sent = [&gate = ctx.response_gate, prompt_id](bool read) { gate.release(prompt_id, read); };
  res.wait_for_ack = true;
  return res;
}

}  // namespace comfy::server
