// `comfycpp serve`: ComfyUI's server flags (comfy/cli_args.py names) and the command itself.
#pragma once
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli/app.h"

namespace comfy {

struct ServeArgs {
  DirectoryArgs dirs;
  std::vector<std::string> listen;  // --listen [IP[,IP...]]
  int port = 8188;
  std::vector<std::string> cors;    // --enable-cors-header [ORIGIN]
  double max_upload_size = 100;
  std::string preview_method = "none";
  int preview_size = 512;
  std::string hashing = "sha256";
  std::string tls_keyfile, tls_certfile;
  std::string front_end_root;  // --front-end-root DIR (empty: web/dist next to the binary)
  bool cpu = false, disable_metadata = false, dont_print_server = false, log_stdout = false, multi_user = false;
  bool quick_test_for_ci = false, enable_compress = false;
  CLI::Option* listen_opt = nullptr;
  CLI::Option* cors_opt = nullptr;
  CLI::Option* max_upload_size_opt = nullptr;

  void add_to(CLI::App& app);
};

int serve_command(ServeArgs& args, int argc, char** argv);

}  // namespace comfy
