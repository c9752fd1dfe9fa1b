// comfycpp: ComfyUI's engine as one native binary.
#include <iostream>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "cli/app.h"
#include "cli/convert.h"
#include "cli/models.h"
#include "cli/serve.h"
#include "core/tensor.h"

namespace comfy {
CLI::App* add_dev_command(CLI::App& app, int* exit_code);  // cli/dev.cpp
}

int main(int argc, char** argv) {
  comfy::init_torch_runtime();  // threads and CPU kernels, before any tensor work
  CLI::App app{"comfycpp: ComfyUI workflows, natively"};
  app.require_subcommand(1);

  comfy::DirectoryArgs run_dirs;
  std::string workflow;
  std::vector<std::string> sets;
  bool json_output = false;
  CLI::App* run = app.add_subcommand("run", "Run a workflow file (API or UI format, or an image carrying one) and exit.");
  run->add_option("workflow", workflow, "The workflow: API-format JSON (or a /prompt request body), UI-format JSON, or a PNG/WebP carrying prompt/workflow metadata.")->required();
  run->add_option("--set", sets, "Override an input: NODE_ID.INPUT=VALUE (VALUE as JSON, else as text).");
  run->add_flag("--json", json_output, "Print the result (or ComfyUI's error JSON) as JSON on stdout.");
  run_dirs.add_to(*run);

  comfy::DirectoryArgs convert_dirs;
  std::string convert_input, convert_to = "api";
  CLI::App* convert = app.add_subcommand("convert", "Convert a UI workflow (or an image carrying one) to an API prompt.");
  convert->add_option("workflow", convert_input, "UI-format workflow JSON, or a PNG/WebP with workflow metadata.")->required();
  convert->add_option("--to", convert_to, "Output format: api (the prompt the frontend would queue).");
  convert_dirs.add_to(*convert);

  comfy::ServeArgs serve_args;
  CLI::App* serve = app.add_subcommand("serve", "Serve ComfyUI's HTTP and WebSocket API.");
  serve_args.add_to(*serve);

  int dev_exit = 0;
  CLI::App* dev = comfy::add_dev_command(app, &dev_exit);
  int models_exit = 0;
  CLI::App* models = comfy::add_models_command(app, &models_exit);

  CLI11_PARSE(app, argc, argv);
  if (dev->parsed()) return dev_exit;
  if (models->parsed()) return models_exit;  // ran in its callback (cli/models.cpp)
  spdlog::set_default_logger(spdlog::stderr_logger_mt("comfycpp"));
  spdlog::set_pattern("%v");

  if (run->parsed()) {
    spdlog::set_level(run_dirs.log_level(json_output ? spdlog::level::err : spdlog::level::info));
    return comfy::run_command(run_dirs, workflow, sets, json_output);
  }
  if (convert->parsed()) return comfy::convert_command(convert_dirs, convert_input, convert_to);
  if (serve->parsed()) {
    if (serve_args.log_stdout) spdlog::set_default_logger(spdlog::stdout_logger_mt("comfycpp-stdout"));
    spdlog::set_pattern("%v");
    spdlog::set_level(serve_args.dirs.log_level(spdlog::level::info));
    return comfy::serve_command(serve_args, argc, argv);
  }
  return 0;
}
