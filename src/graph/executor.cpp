#include "graph/executor.h"

#include <chrono>
#include <cmath>
#include <map>
#include <set>

#include <spdlog/spdlog.h>

#include "core/error.h"
#include "graph/execution_context.h"
#include "graph/execution_list.h"
#include "graph/validation.h"

namespace comfy {

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

void ExecutionContext::check_interrupt() const {
  if (interrupt_ && interrupt_->load()) throw InterruptedError();
}

void ExecutionContext::progress(double value, double total) const {
  check_interrupt();
  if (progress_) progress_(value, total);
}

namespace {

json format_value(const Value& v) {
  if (v.is_object()) return v.object()->repr();
  const json& d = v.data();
  if (d.is_primitive()) return d;
  return py_str(d);
}

// The failure of one node, as ComfyUI's execute() returns it.
struct NodeFailure {
  bool interrupted = false;
  std::string node_id;
  std::string exception_message, exception_type;
  json traceback = json::array();
  json current_inputs = json::object();
};

enum class NodeState { success, pending, failure };

}  // namespace

class Executor::Run {
 public:
  Run(Executor& ex, const json& prompt, std::string prompt_id, const json& extra_data)
      : ex_(ex), prompt_(prompt), prompt_id_(std::move(prompt_id)), extra_data_(extra_data) {
    if (extra_data.contains("client_id") && extra_data["client_id"].is_string())
      client_ = extra_data["client_id"].get<std::string>();
    // latent_preview.set_preview_method: a known method in extra_data wins over --preview-method.
    preview_method_ = ex.services_.options.preview_method;
    if (auto it = extra_data.find("preview_method"); it != extra_data.end() && it->is_string()) {
      std::string m = it->get<std::string>();
      if (m == "none" || m == "auto" || m == "latent2rgb" || m == "taesd") preview_method_ = m;
    }
  }

  ExecutionResult run(const std::vector<std::string>& outputs);

 private:
  void add_message(const std::string& event, json data, bool broadcast) {
    data["timestamp"] = now_ms();
    result_.messages.push_back(json::array({event, data}));
    if (!client_.empty() || broadcast) send(event, data);
  }
  void send(const std::string& event, const json& data) {
    if (ex_.sink_) ex_.sink_->send(event, data, client_);
  }
  void send_to_client(const std::string& event, const json& data) {
    if (!client_.empty()) send(event, data);
  }
  void progress_state(const std::string& id, double value, double max, const char* state) {
    progress_nodes_[id] = json{{"value", value}, {"max", max}, {"state", state}, {"node_id", id},
                               {"prompt_id", prompt_id_}, {"display_node_id", id},
                               {"parent_node_id", nullptr}, {"real_node_id", id}};
    send("progress_state", json{{"prompt_id", prompt_id_}, {"nodes", progress_nodes_}});
  }

  std::map<std::string, json> fingerprints();
  NodeState execute_node(const std::string& id, ExecutionList& list, NodeFailure& failure);
  NodeInputs gather_inputs(const std::string& id, const NodeDef& def, std::set<std::string>& missing);
  std::vector<NodeOutput> map_over_lists(ExecutionContext& ctx, const NodeDef& def, const NodeInputs& inputs,
                                         bool lazy_check, std::vector<std::vector<std::string>>* lazy_out);
  void handle_failure(const NodeFailure& f);

  Executor& ex_;
  json prompt_;  // a copy: change fingerprints are written into it, as ComfyUI does
  std::string prompt_id_;
  const json& extra_data_;
  std::string client_;
  ExecutionResult result_;
  json progress_nodes_ = json::object();
  std::string preview_method_;
  std::map<std::string, std::vector<std::vector<Value>>> outputs_;  // this run's node outputs
  std::vector<std::string> executed_;
  std::vector<std::string> cached_at_start_;
};

std::map<std::string, json> Executor::Run::fingerprints() {
  std::map<std::string, json> out;
  for (auto& [id, node] : prompt_.items()) {
    const NodeDef* def = ex_.registry_.find(node.value("class_type", ""));
    if (!def) continue;
    if (!def->is_changed) {
      // Our addition: inputs that name model files fingerprint the files (path, size, mtime),
      // so a replaced file is read again. Kept out of the prompt, which stays ComfyUI's.
      json files = json::array();
      for (auto* specs : {&def->required, &def->optional})
        for (auto& spec : *specs)
          if (!spec.folder.empty() && spec.folder != "input" && node["inputs"].contains(spec.name) &&
              node["inputs"][spec.name].is_string() && ex_.services_.model_fingerprint)
            files.push_back(ex_.services_.model_fingerprint(spec.folder, node["inputs"][spec.name].get<std::string>()));
      if (!files.empty()) out[id] = files;
      continue;
    }
    // ComfyUI's IsChangedCache: a node's own "is_changed" key wins; otherwise IS_CHANGED runs on
    // the constant inputs and its result is written into the prompt (so PROMPT, saved images
    // and history show it).
    if (!node.contains("is_changed")) {
      NodeInputs constants;
      for (auto& [name, value] : node["inputs"].items())
        if (def->find_input(name)) constants.values[name] = {is_link(value) ? Value() : Value(value)};
      try {
        node["is_changed"] = json::array({def->is_changed(ex_.services_, constants)});
      } catch (const std::exception& e) {
        spdlog::warn("WARNING: {}", e.what());
        node["is_changed"] = NAN;  // an exception means "always changed"
      }
    }
    out[id] = node["is_changed"];
  }
  return out;
}

NodeInputs Executor::Run::gather_inputs(const std::string& id, const NodeDef& def, std::set<std::string>& missing) {
  NodeInputs in;
  const json& inputs = prompt_[id]["inputs"];
  for (auto& [name, value] : inputs.items()) {
    const InputSpec* spec = def.find_input(name);
    if (is_link(value) && !(spec && spec->raw_link())) {
      // This run's result, or what an earlier run left in the cache.
      std::string source = value[0].get<std::string>();
      const std::vector<std::vector<Value>>* outs = nullptr;
      if (auto it = outputs_.find(source); it != outputs_.end()) outs = &it->second;
      else if (const CacheEntry* cached = ex_.cache_.get(source)) outs = &cached->outputs;
      size_t index = value[1].get<size_t>();
      if (!outs || index >= outs->size()) {
        missing.insert(name);
        in.values[name] = {Value()};
        continue;
      }
      in.values[name] = (*outs)[index];
    } else if (spec) {
      in.values[name] = {Value(value)};
    }
  }
  for (auto& [name, type] : def.hidden) {
    if (type == "PROMPT" || type == "DYNPROMPT") in.values[name] = {Value(prompt_)};
    else if (type == "EXTRA_PNGINFO") in.values[name] = {Value(extra_data_.value("extra_pnginfo", json()))};
    else if (type == "UNIQUE_ID") in.values[name] = {Value(json(id))};
    else if (type == "AUTH_TOKEN_COMFY_ORG") in.values[name] = {Value(extra_data_.value("auth_token_comfy_org", json()))};
    else if (type == "API_KEY_COMFY_ORG") in.values[name] = {Value(extra_data_.value("api_key_comfy_org", json()))};
  }
  return in;
}

std::vector<NodeOutput> Executor::Run::map_over_lists(ExecutionContext& ctx, const NodeDef& def, const NodeInputs& inputs,
                                                      bool lazy_check, std::vector<std::vector<std::string>>* lazy_out) {
  std::vector<NodeOutput> results;
  auto call = [&](const NodeInputs& args) {
    ctx.check_interrupt();
    // A blocker in any input blocks the call: its outputs all become that blocker.
    for (auto& [name, values] : args.values)
      for (auto& v : values)
        if (auto* blocker = v.get<ExecutionBlocker>()) {
          if (lazy_check) return;
          Value out = v;
          if (!blocker->message.empty()) {
            send("execution_error", json{{"prompt_id", prompt_id_}, {"node_id", ctx.node_id()},
                                         {"node_type", def.name}, {"executed", executed_},
                                         {"exception_message", "Execution Blocked: " + blocker->message},
                                         {"exception_type", "ExecutionBlocked"}, {"traceback", json::array()},
                                         {"current_inputs", json::array()}, {"current_outputs", json::array()}});
            out = Value::make(ExecutionBlocker());
          }
          results.emplace_back(std::vector<Value>(def.output_types.size(), out));
          return;
        }
    if (lazy_check) lazy_out->push_back(def.check_lazy_status(ctx, args));
    else results.push_back(def.function(ctx, args));
  };
  size_t max_len = 0;
  for (auto& [name, values] : inputs.values) max_len = std::max(max_len, values.size());
  if (def.input_is_list_) {
    call(inputs);
  } else if (max_len == 0) {
    call(NodeInputs{});
  } else {
    for (size_t i = 0; i < max_len; ++i) {
      NodeInputs slice;
      for (auto& [name, values] : inputs.values) {
        if (values.empty()) throw ComfyError("IndexError", "list index out of range");
        slice.values[name] = {values[std::min(i, values.size() - 1)]};
      }
      call(slice);
    }
  }
  return results;
}

NodeState Executor::Run::execute_node(const std::string& id, ExecutionList& list, NodeFailure& failure) {
  const std::string class_type = prompt_[id]["class_type"].get<std::string>();
  const NodeDef& def = *ex_.registry_.find(class_type);

  if (const CacheEntry* cached = ex_.cache_.get(id)) {
    if (!client_.empty()) {
      json ui_output = cached->ui.is_object() ? cached->ui.value("output", json()) : json();
      send("executed", json{{"node", id}, {"display_node", id}, {"output", ui_output}, {"prompt_id", prompt_id_}});
    }
    if (cached->ui.is_object()) {
      result_.outputs[id] = cached->ui["output"];
      result_.meta[id] = cached->ui["meta"];
    }
    outputs_[id] = cached->outputs;
    progress_state(id, 1, 1, "finished");
    return NodeState::success;
  }

  std::optional<NodeInputs> inputs;
  try {
    progress_state(id, 0, 1, "running");
    std::set<std::string> missing;
    inputs = gather_inputs(id, def, missing);
    send_to_client("executing", json{{"node", id}, {"display_node", id}, {"prompt_id", prompt_id_}});
    std::shared_ptr<void>* state =
        ex_.policy_ == CachePolicy::none ? nullptr : &ex_.node_states_[{id, class_type}];
    ExecutionContext ctx(
        ex_.services_, prompt_id_, id, &ex_.interrupt_,
        [&](double value, double total) {
          progress_state(id, value, total, "running");
          send("progress", json{{"value", value}, {"max", total}, {"prompt_id", prompt_id_}, {"node", id}});
        },
        state);
    ctx.set_preview(preview_method_, ex_.services_.options.preview_size, [&, id](const std::string& jpeg) {
      if (!ex_.sink_) return;
      json metadata = {{"node_id", id},          {"prompt_id", prompt_id_}, {"display_node_id", id},
                       {"parent_node_id", nullptr}, {"real_node_id", id}};
      ex_.sink_->send_preview(jpeg, false, metadata, client_);
    });

    if (def.check_lazy_status) {
      std::vector<std::vector<std::string>> wanted;
      map_over_lists(ctx, def, *inputs, true, &wanted);
      std::set<std::string> needed;
      for (auto& names : wanted)
        for (auto& n : names)
          if (!inputs->has(n) || missing.count(n)) needed.insert(n);
      bool added = false;
      for (auto& n : needed) {
        const json& in = prompt_[id]["inputs"];
        if (in.contains(n) && is_link(in[n])) {
          list.make_input_strong_link(id, n);
          added = true;
        }
      }
      if (added) return NodeState::pending;
    }

    std::vector<NodeOutput> calls = map_over_lists(ctx, def, *inputs, false, nullptr);
    // Merge the calls: per slot, one value per call, or the concatenation of list outputs.
    std::vector<std::vector<Value>> merged(def.output_types.size());
    json ui = json::object();
    bool first_ui = true;
    std::vector<std::string> ui_keys;
    for (auto& r : calls) {
      if (!r.result.empty() && r.result.size() != def.output_types.size())
        throw ComfyError("ValueError", class_type + " returned " + std::to_string(r.result.size()) +
                                           " outputs, expected " + std::to_string(def.output_types.size()));
      for (size_t k = 0; k < r.result.size(); ++k) {
        if (def.output_is_list[k].value_or(false)) {
          if (auto* l = r.result[k].get<ValueList>()) merged[k].insert(merged[k].end(), l->items.begin(), l->items.end());
          else merged[k].push_back(r.result[k]);  // a blocker stands for the whole list
        } else {
          merged[k].push_back(r.result[k]);
        }
      }
      if (r.ui.is_object()) {
        if (first_ui) {
          for (auto& [k, v] : r.ui.items()) ui_keys.push_back(k), ui[k] = json::array();
          first_ui = false;
        }
        for (auto& k : ui_keys)
          if (r.ui.contains(k))
            for (auto& item : r.ui[k]) ui[k].push_back(item);
      }
    }
    CacheEntry entry;
    if (!ui.empty()) {
      json meta{{"node_id", id}, {"display_node", id}, {"parent_node", nullptr}, {"real_node_id", id}};
      entry.ui = json{{"meta", meta}, {"output", ui}};
      result_.outputs[id] = ui;
      result_.meta[id] = meta;
      send_to_client("executed", json{{"node", id}, {"display_node", id}, {"output", ui}, {"prompt_id", prompt_id_}});
    }
    entry.outputs = merged;
    outputs_[id] = merged;
    ex_.cache_.set(id, std::move(entry));
  } catch (const InterruptedError&) {
    failure.interrupted = true;
    failure.node_id = id;
    return NodeState::failure;
  } catch (const std::exception& e) {
    failure.node_id = id;
    const auto* ce = dynamic_cast<const ComfyError*>(&e);
    failure.exception_type = ce ? ce->type() : "RuntimeError";
    failure.exception_message = std::string(e.what()) + "\n";
    failure.traceback = json::array({"  File \"comfycpp\", node " + id + " (" + class_type + ")\n"});
    if (inputs) {
      // In ComfyUI's order: the prompt's inputs, then the hidden ones.
      std::vector<std::string> names;
      for (auto& [name, v] : prompt_[id]["inputs"].items()) names.push_back(name);
      for (auto& [name, type] : def.hidden) names.push_back(name);
      for (auto& name : names) {
        if (!inputs->has(name)) continue;
        json formatted = json::array();
        for (auto& v : inputs->list(name)) formatted.push_back(format_value(v));
        failure.current_inputs[name] = formatted;
      }
    }
    spdlog::error("!!! Exception during processing !!! {}", e.what());
    return NodeState::failure;
  }
  progress_state(id, 1, 1, "finished");
  executed_.push_back(id);
  return NodeState::success;
}

void Executor::Run::handle_failure(const NodeFailure& f) {
  std::string class_type = prompt_.contains(f.node_id) ? prompt_[f.node_id].value("class_type", "") : "";
  if (f.interrupted) {
    result_.interrupted = true;
    json mes{{"prompt_id", prompt_id_}, {"node_id", f.node_id}, {"node_type", class_type}, {"executed", executed_}};
    add_message("execution_interrupted", mes, true);
    result_.error = result_.messages.back()[1];
    return;
  }
  json mes{{"prompt_id", prompt_id_},
           {"node_id", f.node_id},
           {"node_type", class_type},
           {"executed", executed_},
           {"exception_message", f.exception_message},
           {"exception_type", f.exception_type},
           {"traceback", f.traceback},
           {"current_inputs", f.current_inputs},
           {"current_outputs", cached_at_start_}};
  add_message("execution_error", mes, false);
  result_.error = result_.messages.back()[1];
}

ExecutionResult Executor::Run::run(const std::vector<std::string>& outputs) {
  ex_.interrupt_ = false;
  add_message("execution_start", json{{"prompt_id", prompt_id_}}, false);

  std::vector<std::string> ids;
  for (auto& [id, node] : prompt_.items()) ids.push_back(id);
  // Node states live while the same id keeps the same class in the prompt.
  for (auto it = ex_.node_states_.begin(); it != ex_.node_states_.end();) {
    const auto& [nid, cls] = it->first;
    bool kept = prompt_.contains(nid) && prompt_[nid].value("class_type", "") == cls;
    it = kept ? std::next(it) : ex_.node_states_.erase(it);
  }
  ex_.cache_.set_prompt(std::make_shared<CacheKeys>(ex_.registry_, prompt_, fingerprints()), ids);
  for (auto& id : ids)
    if (ex_.cache_.get(id)) cached_at_start_.push_back(id);
  add_message("execution_cached", json{{"nodes", cached_at_start_}, {"prompt_id", prompt_id_}}, false);

  ExecutionList list(ex_.registry_, prompt_,
                     [&](const std::string& id) { return outputs_.count(id) || ex_.cache_.get(id) != nullptr; });
  for (auto& o : outputs) list.add_node(o);

  bool failed = false;
  while (!list.empty()) {
    std::string cycle_node;
    auto id = list.stage(&cycle_node);
    if (!id) {
      NodeFailure f;
      f.node_id = cycle_node;
      f.exception_message = "Dependency cycle detected";
      f.exception_type = "graph.DependencyCycleError";
      f.current_inputs = json::array();
      handle_failure(f);
      failed = true;
      break;
    }
    NodeFailure failure;
    NodeState state = execute_node(*id, list, failure);
    if (state == NodeState::failure) {
      handle_failure(failure);
      failed = true;
      break;
    }
    if (state == NodeState::pending) list.unstage();
    else list.complete();
  }
  if (!failed) add_message("execution_success", json{{"prompt_id", prompt_id_}}, false);
  result_.success = !failed;
  result_.prompt = prompt_;
  return result_;
}

Executor::Executor(const Registry& registry, const Services& services, EventSink* sink, CachePolicy policy,
                   size_t lru_size)
    : registry_(registry), services_(services), sink_(sink), cache_(policy, lru_size), policy_(policy) {}

ExecutionResult Executor::execute(const json& prompt, const std::string& prompt_id, const json& extra_data,
                                  const std::vector<std::string>& outputs) {
  Run run(*this, prompt, prompt_id, extra_data);
  return run.run(outputs);
}

void Executor::reset() {
  cache_.clear();
  node_states_.clear();
}

}  // namespace comfy
