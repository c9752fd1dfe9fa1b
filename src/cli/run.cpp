// `comfycpp run WORKFLOW`: validate and execute one workflow without a server, as ComfyUI would
// if it were queued. Exit code 0 only when every output ran.
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <random>

#include <spdlog/spdlog.h>

#include "cli/app.h"
#include "cli/workflow_file.h"
#include "graph/executor.h"
#include "graph/ui_workflow.h"
#include "graph/validation.h"

namespace comfy {
namespace {

// Prints progress on a terminal and one line per finished output.
class CliSink : public EventSink {
 public:
  explicit CliSink(bool quiet) : quiet_(quiet), tty_(isatty(STDERR_FILENO)) {}

  void send(const std::string& type, const json& data, const std::string&) override {
    if (quiet_) return;
    if (type == "executing" && data["node"].is_string()) {
      current_ = data["node"].get<std::string>();
    } else if (type == "progress" && tty_) {
      double value = data["value"].get<double>(), max = data["max"].get<double>();
      int width = 30, filled = max > 0 ? static_cast<int>(width * value / max) : 0;
      std::fprintf(stderr, "\r  node %s [%s%s] %g/%g", current_.c_str(), std::string(filled, '#').c_str(),
                   std::string(width - filled, ' ').c_str(), value, max);
      if (value >= max) std::fprintf(stderr, "\n");
    } else if (type == "executed" && data["output"].is_object()) {
      for (auto& [kind, items] : data["output"].items()) {
        if (!items.is_array()) continue;
        for (auto& item : items) {
          if (item.is_object() && item.contains("filename")) {
            std::string sub = item.value("subfolder", "");
            std::cout << item.value("type", "output") << "/" << (sub.empty() ? "" : sub + "/")
                      << item["filename"].get<std::string>() << "\n";
          } else if (!item.is_object()) {
            std::cout << "node " << data["node"].get<std::string>() << " " << kind << ": " << py_str(item) << "\n";
          }
        }
      }
    }
  }

 private:
  bool quiet_, tty_;
  std::string current_;
};

std::string new_prompt_id() {
  std::random_device rd;
  std::mt19937_64 gen(rd());
  uint64_t a = gen(), b = gen();
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08x-%04x-4%03x-%04x-%012llx", static_cast<unsigned>(a >> 32),
                static_cast<unsigned>((a >> 16) & 0xffff), static_cast<unsigned>(a & 0xfff),
                static_cast<unsigned>(0x8000 | ((b >> 48) & 0x3fff)),
                static_cast<unsigned long long>(b & 0xffffffffffffULL));
  return buf;
}

// --set NODE_ID.INPUT=VALUE: VALUE is JSON when it parses as JSON, else a string.
void apply_set(json& prompt, const std::string& assignment) {
  auto eq = assignment.find('=');
  auto dot = assignment.find('.');
  if (eq == std::string::npos || dot == std::string::npos || dot > eq)
    throw std::runtime_error("--set expects NODE_ID.INPUT=VALUE, got: " + assignment);
  std::string node = assignment.substr(0, dot), input = assignment.substr(dot + 1, eq - dot - 1);
  std::string text = assignment.substr(eq + 1);
  if (!prompt.contains(node)) throw std::runtime_error("--set: the workflow has no node " + node);
  json value;
  try {
    value = json::parse(text);
  } catch (const json::parse_error&) {
    value = text;
  }
  prompt[node]["inputs"][input] = value;
}

void print_validation_error(const ValidationResult& v) {
  std::cerr << "Prompt validation failed: " << v.error["message"].get<std::string>();
  std::string details = v.error["details"].get<std::string>();
  if (!details.empty()) std::cerr << ": " << details;
  std::cerr << "\n";
  for (auto& [id, ne] : v.node_errors.items())
    for (auto& e : ne["errors"])
      std::cerr << "  node " << id << " (" << ne["class_type"].get<std::string>() << "): "
                << e["message"].get<std::string>() << ": " << e["details"].get<std::string>() << "\n";
}

}  // namespace

int run_command(const DirectoryArgs& dirs, const std::string& workflow, const std::vector<std::string>& sets,
                bool json_output) {
  // The workflow may be an API prompt, a UI workflow, or an image carrying either (workflow_file.h).
  LoadedWorkflow loaded;
  std::unique_ptr<AppState> app;
  auto fail = [&](const json& error) {
    if (json_output)
      std::cout << json{{"error", error}, {"node_errors", json::object()}}.dump() << "\n";
    else
      std::cerr << "error: " << error["message"].get<std::string>()
                << (error["details"].get<std::string>().empty() ? "" : ": " + error["details"].get<std::string>())
                << "\n";
    return 1;
  };
  try {
    app = std::make_unique<AppState>(dirs);
    loaded = load_workflow_file(workflow, app->registry, app->services);
    for (auto& s : sets) apply_set(loaded.prompt, s);
  } catch (const WorkflowError& e) {
    return fail(e.error_object());
  } catch (const std::exception& e) {
    return fail(json{{"type", "invalid_prompt"}, {"message", e.what()}, {"details", ""}, {"extra_info", json::object()}});
  }
  json& prompt = loaded.prompt;
  spdlog::debug("workflow read as {}", loaded.source);

  ValidationResult v = validate_prompt(app->registry, app->services, prompt);
  if (!v.ok) {
    if (json_output) std::cout << v.error_body().dump() << "\n";
    else print_validation_error(v);
    return 1;
  }
  if (!json_output && !v.node_errors.empty()) print_validation_error(v);

  CliSink sink(json_output);
  Executor executor(app->registry, app->services, &sink);
  std::string prompt_id = new_prompt_id();
  // A client id makes the executor send the per-client messages (executed, ...) to our sink.
  json extra_data = loaded.extra_data;
  extra_data["client_id"] = "cli";
  ExecutionResult r = executor.execute(prompt, prompt_id, extra_data, v.outputs);
  if (json_output) {
    std::cout << json{{"prompt_id", prompt_id}, {"outputs", r.outputs},
                      {"status", {{"status_str", r.success ? "success" : "error"}, {"completed", r.success},
                                  {"messages", r.messages}}}}.dump()
              << "\n";
  } else if (!r.success) {
    if (r.interrupted) {
      std::cerr << "interrupted\n";
    } else {
      std::cerr << "Error in node " << r.error["node_id"].get<std::string>() << " ("
                << r.error["node_type"].get<std::string>() << "): " << r.error["exception_type"].get<std::string>()
                << ": " << r.error["exception_message"].get<std::string>();
    }
  }
  return r.success ? 0 : 1;
}

}  // namespace comfy
