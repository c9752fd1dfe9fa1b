// `comfycpp serve`: ComfyUI's HTTP and WebSocket API over the engine. The Server owns the
// durable prompt queue (SQLite under <user>/__comfycpp/), the worker thread that runs prompts one
// at a time, the executor, the WebSocket hub and the HTTP transport. The caller owns the node
// registry and the services (folders), so tests can serve their own node pack.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "graph/registry.h"
#include "graph/services.h"

namespace comfy {
class FolderPaths;
}

namespace comfy::server {

class WsHub;

struct ServerOptions {
  std::vector<std::string> listen = {"127.0.0.1"};  // --listen (no value: "0.0.0.0", "::")
  uint16_t port = 8188;                              // --port (0: ephemeral, for tests)
  std::optional<std::string> cors_origin;            // --enable-cors-header [ORIGIN]
  double max_upload_size_mb = 100;                   // --max-upload-size
  bool max_upload_size_given = false;                // given: /features shows a float (argparse keeps the default an int)
  bool multi_user = false;                           // --multi-user
  bool dont_print_server = false;                    // --dont-print-server
  bool persist = true;                               // keep queue and history in SQLite
  bool run_worker = true;                            // false: prompts are queued, never run
  int io_threads = 4;
  std::string preview_method = "none";               // --preview-method
  int preview_size = 512;                            // --preview-size
  std::string hashing_function = "sha256";           // --default-hashing-function
  bool cpu = false;                                  // --cpu
  std::string tls_certfile, tls_keyfile;             // --tls-certfile/--tls-keyfile: HTTPS and WSS
  std::vector<std::string> argv;                     // /system_stats "argv"
  std::string pytorch_version = "";                  // /system_stats, from the caller
  std::function<json()> devices;                     // /system_stats "devices" (empty: the CPU)
};

class Server {
 public:
  Server(ServerOptions options, const Registry& registry, Services& services, FolderPaths& folders);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Opens the queue, starts the worker and listens. Returns the bound port. Throws on failure.
  uint16_t start();
  // Interrupts the running prompt, stops the worker and the transport. Idempotent.
  void stop();
  uint16_t port() const;
  // The WebSocket hub (valid after start): where sampler previews go (send_preview).
  WsHub& hub();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace comfy::server
