// `comfycpp serve`: builds the folders and the node registry as `run` does, then serves
// ComfyUI's HTTP and WebSocket API until SIGINT or SIGTERM.
#include "cli/serve.h"

#include <csignal>
#include <filesystem>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "server/handlers/static_files.h"
#include "server/server.h"

namespace comfy {

void ServeArgs::add_to(CLI::App& app) {
  dirs.add_to(app);
  listen_opt = app.add_option("--listen", listen,
                              "IP address(es) to listen on, comma separated (default 127.0.0.1; "
                              "the flag alone: 0.0.0.0,:: -- every interface).")
                   ->expected(0, 1);
  app.add_option("--port", port, "Port to listen on (default 8188).");
  cors_opt = app.add_option("--enable-cors-header", cors,
                            "Send CORS headers for ORIGIN (the flag alone: '*') instead of the origin check.")
                 ->expected(0, 1);
  max_upload_size_opt = app.add_option("--max-upload-size", max_upload_size, "Largest request body, in MB (default 100).");
  app.add_option("--preview-method", preview_method, "Sampler previews: none, auto, latent2rgb, taesd.")
      ->check(CLI::IsMember({"none", "auto", "latent2rgb", "taesd"}));
  app.add_option("--preview-size", preview_size, "Longest side of a preview picture (default 512).");
  app.add_option("--default-hashing-function", hashing, "Upload de-duplication hash (md5, sha1, sha256, sha512).")
      ->check(CLI::IsMember({"md5", "sha1", "sha256", "sha512"}));
  app.add_option("--tls-keyfile", tls_keyfile, "TLS private key (PEM): serve HTTPS and WSS (with --tls-certfile).");
  app.add_option("--tls-certfile", tls_certfile, "TLS certificate chain (PEM): serve HTTPS and WSS (with --tls-keyfile).");
  app.add_option("--front-end-root", front_end_root,
                 "Folder of the web UI to serve at / (default: web/dist next to the binary or the source tree).");
  app.add_flag("--cpu", cpu, "Run everything on the CPU.");
  app.add_flag("--disable-metadata", disable_metadata, "Save no prompt/workflow metadata in files.");
  app.add_flag("--dont-print-server", dont_print_server, "Do not print the server address.");
  app.add_flag("--log-stdout", log_stdout, "Log to stdout instead of stderr.");
  app.add_flag("--multi-user", multi_user, "Per-user storage keyed by the Comfy-User header.");
  app.add_flag("--enable-compress-response-body", enable_compress, "Accepted for compatibility; not used yet.");
  app.add_flag("--quick-test-for-ci", quick_test_for_ci, "Start, report readiness, and exit.");
}

int serve_command(ServeArgs& args, int argc, char** argv) {
  auto t0 = std::chrono::steady_clock::now();
  if (args.tls_keyfile.empty() != args.tls_certfile.empty()) {
    spdlog::error("--tls-keyfile and --tls-certfile go together: give both (or neither)");
    return 1;
  }
  server::ServerOptions options;
  if (args.listen_opt->count() > 0) {
    options.listen.clear();
    // The flag alone: CLI11 leaves no value or one empty value.
    bool alone = args.listen.empty() || args.listen.front().empty();
    std::string spec = alone ? "0.0.0.0,::" : args.listen.front();
    size_t start = 0;
    while (start <= spec.size()) {
      size_t comma = spec.find(',', start);
      std::string a = spec.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      if (!a.empty()) options.listen.push_back(a);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  if (options.listen.empty()) {
    spdlog::error("--listen: no address in '{}'", args.listen.empty() ? "" : args.listen.front());
    return 1;
  }
  if (args.port < 0 || args.port > 65535) {
    spdlog::error("--port must be between 0 and 65535");
    return 1;
  }
  options.port = static_cast<uint16_t>(args.port);
  if (args.cors_opt->count() > 0)
    options.cors_origin = args.cors.empty() || args.cors.front().empty() ? "*" : args.cors.front();
  options.max_upload_size_mb = args.max_upload_size;
  options.max_upload_size_given = args.max_upload_size_opt->count() > 0;
  options.multi_user = args.multi_user;
  options.dont_print_server = args.dont_print_server;
  options.preview_method = args.preview_method;
  options.preview_size = args.preview_size;
  options.hashing_function = args.hashing;
  options.cpu = args.cpu;
  options.tls_certfile = args.tls_certfile;
  options.tls_keyfile = args.tls_keyfile;
  options.argv.assign(argv, argv + argc);
  if (!args.front_end_root.empty()) {
    if (!std::filesystem::is_regular_file(std::filesystem::path(args.front_end_root) / "index.html")) {
      spdlog::error("--front-end-root {}: no index.html in that folder", args.front_end_root);
      return 1;
    }
    server::set_front_end_root(std::filesystem::absolute(args.front_end_root));
  }

  // Signals are taken by sigwait below: block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::unique_ptr<AppState> app;
  std::unique_ptr<server::Server> srv;
  try {
    app = std::make_unique<AppState>(args.dirs);
    app->services.options.disable_metadata = args.disable_metadata;
    app->services.options.preview_method = args.preview_method;
    app->services.options.preview_size = args.preview_size;
    srv = std::make_unique<server::Server>(options, app->registry, app->services, *app->folders);
    srv->start();
  } catch (const std::exception& e) {
    spdlog::error("error: {}", e.what());
    return 1;
  }
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  spdlog::info("Ready in {:.1f} ms ({} node classes)", ms, app->registry.all().size());
  if (args.quick_test_for_ci) {
    srv->stop();
    return 0;
  }
  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("Stopping ({})", sig == SIGINT ? "SIGINT" : "SIGTERM");
  srv->stop();
  std::error_code ec;
  std::filesystem::remove_all(app->folders->temp_directory(), ec);  // ComfyUI cleans temp on exit
  return 0;
}

}  // namespace comfy
