// comfycpp: ComfyUI's engine as one native binary.
#include <iostream>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "cli/app.h"
#include "cli/serve.h"

int main(int argc, char** argv) {
  CLI::App app{"comfycpp: ComfyUI workflows, natively"};
  app.require_subcommand(1);

  comfy::DirectoryArgs run_dirs;
  std::string workflow;
  std::vector<std::string> sets;
  bool json_output = false;
  CLI::App* run = app.add_subcommand("run", "Run a workflow file (API format) and exit.");
  run->add_option("workflow", workflow, "The workflow: API-format JSON (or a /prompt request body).")->required();
  run->add_option("--set", sets, "Override an input: NODE_ID.INPUT=VALUE (VALUE as JSON, else as text).");
  run->add_flag("--json", json_output, "Print the result (or ComfyUI's error JSON) as JSON on stdout.");
  run_dirs.add_to(*run);

  comfy::ServeArgs serve_args;
  CLI::App* serve = app.add_subcommand("serve", "Serve ComfyUI's HTTP and WebSocket API.");
  serve_args.add_to(*serve);

  CLI11_PARSE(app, argc, argv);
  spdlog::set_default_logger(spdlog::stderr_logger_mt("comfycpp"));
  spdlog::set_pattern("%v");

  if (run->parsed()) {
    spdlog::set_level(run_dirs.verbose ? spdlog::level::debug : (json_output ? spdlog::level::err : spdlog::level::info));
    return comfy::run_command(run_dirs, workflow, sets, json_output);
  }
  if (serve->parsed()) {
    if (serve_args.log_stdout) spdlog::set_default_logger(spdlog::stdout_logger_mt("comfycpp-stdout"));
    spdlog::set_pattern("%v");
    spdlog::set_level(serve_args.dirs.verbose ? spdlog::level::debug : spdlog::level::info);
    return comfy::serve_command(serve_args, argc, argv);
  }
  return 0;
}
