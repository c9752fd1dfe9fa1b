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
};

// Milliseconds since the epoch, as ComfyUI stamps its messages.
int64_t now_ms();

}  // namespace comfy
