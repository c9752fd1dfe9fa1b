// What the executor and the queue tell the outside world. The server turns these into WebSocket
// messages; the CLI into a progress bar. `sid` empty means broadcast.
#pragma once
#include <string>

#include "core/json.h"

namespace comfy {

class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void send(const std::string& type, const json& data, const std::string& sid) = 0;
  // A sampler preview picture (JPEG, or PNG when `png`): the server sends it as a binary frame,
  // with `metadata` (node_id, prompt_id, ...) to clients that announced supports_preview_metadata.
  virtual void send_preview(const std::string& image, bool png, const json& metadata, const std::string& sid) {
    (void)image, (void)png, (void)metadata, (void)sid;
  }
};

// Milliseconds since the epoch, as ComfyUI stamps its messages.
int64_t now_ms();

}  // namespace comfy
