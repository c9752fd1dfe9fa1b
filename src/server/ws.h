// The WebSocket hub: ComfyUI's sockets registry. Connections are keyed by sid (the clientId
// query parameter, or a fresh uuid4 hex); a reconnect with the same sid replaces the old socket.
// It is the executor's EventSink: sid "" broadcasts. Every message is serialised once into an
// immutable shared string that each target connection queues; a connection keeps one write in
// flight, and one whose backlog grows past its limit is dropped, so a slow or dead client never
// stalls the sender.
#pragma once
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "graph/events.h"

namespace comfy::server {

// One accepted socket as the hub sees it (implemented by the transport).
class WsConnection {
 public:
  virtual ~WsConnection() = default;
  // Queues a frame; never blocks. Thread-safe.
  virtual void write(std::shared_ptr<const std::string> frame, bool binary) = 0;
  virtual void close() = 0;
};

// Binary frame event types (spec 2.4).
enum class BinaryEvent : uint32_t { preview_image = 1, text = 3, preview_image_with_metadata = 4 };

class WsHub : public EventSink {
 public:
  // `queue_info`: {"exec_info": {"queue_remaining": N}}; `features`: the /features object.
  WsHub(std::function<json()> queue_info, std::function<json()> features);

  // EventSink: a JSON text frame {"type", "data"} to `sid`, or to everyone when sid is empty.
  // Messages for sids that are not connected are dropped.
  void send(const std::string& type, const json& data, const std::string& sid) override;
  // A binary frame: 4-byte big-endian event type, then `payload`.
  void send_binary(BinaryEvent event, const std::string& payload, const std::string& sid);
  // A preview picture (1 = JPEG, 2 = PNG): type 4 with `metadata` to clients that announced
  // supports_preview_metadata, type 1 to the others (spec 2.4).
  void send_preview(const std::string& image, bool png, const json& metadata, const std::string& sid) override;

  bool supports_preview_metadata(const std::string& sid) const;
  size_t client_count() const;
  bool connected(const std::string& sid) const;
  void close_all();

  // Called by the transport.
  void on_open(const std::shared_ptr<WsConnection>& conn, const std::string& sid);
  void on_text(const std::shared_ptr<WsConnection>& conn, const std::string& sid, const std::string& text);
  void on_close(const std::shared_ptr<WsConnection>& conn, const std::string& sid);

  // The largest backlog (bytes) a connection may have before it is dropped.
  static constexpr size_t kMaxBacklogBytes = 64u << 20;

 private:
  struct Client {
    std::shared_ptr<WsConnection> conn;
    json flags = json::object();
    bool first_message = true;
  };
  void deliver(std::shared_ptr<const std::string> frame, bool binary, const std::string& sid);
  std::function<json()> queue_info_, features_;
  mutable std::mutex mutex_;
  std::map<std::string, Client> clients_;
  // The client of the prompt running now and the node it is on (for a reconnect).
  std::string running_client_;
  std::optional<std::string> running_node_;
};

std::string new_sid();        // uuid4 hex, 32 characters
std::string new_uuid4();      // canonical hyphenated uuid4

}  // namespace comfy::server
