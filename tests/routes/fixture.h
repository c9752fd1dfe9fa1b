// An in-process comfycpp server for route tests: a fresh temp base directory, the test-only node
// pack (or a registry the test builds), 127.0.0.1 on an ephemeral port.
#pragma once
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>

#include "graph/registry.h"
#include "graph/services.h"
#include "models/folder_paths.h"
#include "routes/client.h"
#include "server/server.h"
#include "testing_nodes/testing_nodes.h"

namespace comfy::testing {

inline std::filesystem::path make_temp_dir(const std::string& tag) {
  std::random_device rd;
  auto dir = std::filesystem::temp_directory_path() /
             ("comfycpp-" + tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
  std::filesystem::create_directories(dir);
  return dir;
}

// The folders, registry and services of one server, built the way AppState builds them.
struct ServerEnv {
  std::filesystem::path dir;
  bool own_dir = true;
  std::unique_ptr<FolderPaths> folders;
  Registry registry;
  Services services;

  explicit ServerEnv(std::filesystem::path base = {}) {
    if (base.empty()) dir = make_temp_dir("routes");
    else dir = std::move(base), own_dir = false;
    folders = std::make_unique<FolderPaths>(dir);
    folders->add_output_model_folders();
    for (auto& d : {folders->input_directory(), folders->output_directory(), folders->temp_directory(),
                    folders->user_directory()})
      std::filesystem::create_directories(d);
    services.folders = folders.get();
    services.list_folder = [f = folders.get()](const std::string& name) { return f->get_filename_list(name); };
  }
  ~ServerEnv() {
    std::error_code ec;
    if (own_dir) std::filesystem::remove_all(dir, ec);
  }
};

struct TestServer {
  ServerEnv env;
  std::unique_ptr<server::Server> server;
  uint16_t port = 0;

  // `setup` may adjust the options and fill the registry; by default the test node pack.
  explicit TestServer(const std::function<void(server::ServerOptions&, Registry&)>& setup = {},
                      std::filesystem::path base = {})
      : env(std::move(base)) {
    server::ServerOptions options;
    options.listen = {"127.0.0.1"};
    options.port = 0;
    options.dont_print_server = true;
    options.io_threads = 2;
    if (setup) setup(options, env.registry);
    else register_testing_nodes(env.registry);
    server = std::make_unique<server::Server>(options, env.registry, env.services, *env.folders);
    port = server->start();
  }
  ~TestServer() { server->stop(); }

  HttpResult get(const std::string& target) const { return http_get(port, target); }
  HttpResult post(const std::string& target, const json& body) const { return http_post_json(port, target, body); }
  HttpResult request(const std::string& method, const std::string& target, const std::string& body = "",
                     const Headers& headers = {}) const {
    return http_request(port, method, target, body, headers);
  }
};

inline json node(const std::string& class_type, json inputs) {
  return json{{"class_type", class_type}, {"inputs", std::move(inputs)}};
}
inline json link(const std::string& id, int slot = 0) { return json::array({id, slot}); }

// TestInt(value) -> TestOutput: one output node "2" showing {"values": [value]}.
inline json int_prompt(int value) {
  return json{{"1", node("TestInt", {{"value", value}})}, {"2", node("TestOutput", {{"value", link("1")}})}};
}
// TestInt -> TestSlow(steps x sleep_ms) -> TestOutput.
inline json slow_prompt(int steps, int sleep_ms, int value = 1) {
  return json{{"1", node("TestInt", {{"value", value}})},
              {"2", node("TestSlow", {{"value", link("1")}, {"steps", steps}, {"sleep_ms", sleep_ms}})},
              {"3", node("TestOutput", {{"value", link("2")}})}};
}

// Polls `pred` every 10 ms until it holds or `timeout` passes.
inline bool wait_for(const std::function<bool()>& pred, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

// Both spellings of a route: "/x" and "/api/x".
inline std::vector<std::string> both(const std::string& path) { return {path, "/api" + path}; }

}  // namespace comfy::testing
