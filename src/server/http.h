// The transport: a Boost.Beast listener on one or more addresses, HTTP/1.1 connections with
// keep-alive, and the WebSocket upgrade, all on one port. Handlers never see Beast: they get a
// Request and return a Response. Only http.cpp and ws.cpp include Beast.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/json.h"

namespace comfy::server {

class WsHub;

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string target;  // as received: path and query, still percent-encoded
  std::string raw_path;  // the target's path, still percent-encoded
  std::vector<std::pair<std::string, std::string>> query;  // decoded, in order
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  std::string remote;  // peer address
  bool is_upgrade = false;  // a WebSocket upgrade request
  // Filled by the router: the decoded {name} segments of the matched pattern.
  std::vector<std::pair<std::string, std::string>> params;

  const std::string* header(const std::string& lower_name) const;
  bool has_query(const std::string& key) const;
  std::optional<std::string> query_value(const std::string& key) const;  // the first value
  std::string param(const std::string& name) const;
};

struct Response {
  int status = 200;
  std::string content_type;  // empty: no Content-Type header
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  bool websocket = false;  // accept the upgrade and hand the socket to the hub
  std::string websocket_sid;
  // Called once the answer has been written to the socket (or the write failed). With
  // `wait_for_ack`, only once the client program has read it, for a client on this machine (Linux:
  // SIOCOUTQ, then the client socket's receive queue by sock_diag, polled), or after a bound;
  // `read` says which. A client on another machine: once its TCP stack acknowledged the bytes,
  // with `read` false (its reads cannot be seen).
  std::function<void(bool read)> on_sent;
  bool wait_for_ack = false;

  static Response json_body(const json& value, int status = 200);  // Python json.dumps text
  static Response text(std::string body, int status = 200, std::string content_type = "text/plain; charset=utf-8");
  static Response empty(int status = 200);  // aiohttp's web.Response(status=...)
  static Response bytes(std::string body, std::string content_type);
  static Response upgrade(std::string sid);
  void set_header(const std::string& name, const std::string& value);  // replaces
  bool has_header(const std::string& name) const;
};

// aiohttp's own pages for errors raised outside a handler.
Response not_found();               // 404 "404: Not Found"
Response method_not_allowed(const std::vector<std::string>& allowed);
Response internal_error();          // 500 "500 Internal Server Error\n\nServer got itself in trouble"

std::string percent_decode(const std::string& s, bool plus_as_space = false);

class HttpServer {
 public:
  using Handler = std::function<Response(Request&)>;

  // `body_limit`: the largest request body accepted (413 beyond).
  HttpServer(Handler handler, WsHub& hub, uint64_t body_limit, int threads);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds every address on `port` (0: an ephemeral port, the same for all addresses after the
  // first) and starts serving. Throws std::runtime_error when an address cannot be bound.
  uint16_t listen(const std::vector<std::string>& addresses, uint16_t port);
  void stop();  // closes the listeners and every connection; joins the threads
  // Serves HTTPS and WSS (instead of HTTP and WS) on every address. Call before listen. Throws
  // std::runtime_error naming the file when the certificate or the key cannot be used.
  void use_tls(const std::string& certfile, const std::string& keyfile);
  bool tls() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace comfy::server
