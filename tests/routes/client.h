// A small synchronous client for the route tests: one HTTP request per connection, and a
// WebSocket whose frames a reader thread collects, so every wait has a timeout.
#pragma once
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/json.h"

namespace comfy::testing {

struct HttpResult {
  int status = 0;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  json json_body() const;  // throws when the body is not JSON
  std::string header(const std::string& lower_name) const;
};

using Headers = std::vector<std::pair<std::string, std::string>>;

HttpResult http_request(uint16_t port, const std::string& method, const std::string& target,
                        const std::string& body = "", const Headers& headers = {});
// The same to another address ("::1", "127.0.0.1"); throws when nothing listens there.
HttpResult http_request_at(const std::string& address, uint16_t port, const std::string& method,
                           const std::string& target, const std::string& body = "", const Headers& headers = {});
inline HttpResult http_get(uint16_t port, const std::string& target) { return http_request(port, "GET", target); }
HttpResult http_post_json(uint16_t port, const std::string& target, const json& body);

// A multipart/form-data body: (name, filename or "" for a plain field, data).
struct FormField {
  std::string name, filename, data;
};
std::pair<std::string, std::string> multipart_body(const std::vector<FormField>& fields);  // (content type, body)

struct WsMessage {
  bool binary = false;
  std::string data;
  json json_data() const { return json::parse(data); }
};

class WsClient {
 public:
  // Connects to ws://127.0.0.1:port/<target>; throws on failure.
  WsClient(uint16_t port, const std::string& target);
  ~WsClient();
  WsClient(const WsClient&) = delete;
  WsClient& operator=(const WsClient&) = delete;

  std::optional<WsMessage> next(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // The next text message whose type is `type` (others are skipped); nullopt on timeout.
  std::optional<json> next_of_type(const std::string& type, std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // Every message until `pred` holds for one (included) or the timeout passes.
  std::vector<WsMessage> collect_until(const std::function<bool(const WsMessage&)>& pred,
                                       std::chrono::milliseconds timeout = std::chrono::seconds(10));
  void send_text(const std::string& text);
  void close();
  bool closed_by_peer();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace comfy::testing
