// ComfyUI's error object: every error the API returns has exactly these four keys (spec 3.3).
#pragma once
#include <stdexcept>
#include <string>

#include "core/json.h"

namespace comfy {

struct ErrorObject {
  std::string type;
  std::string message;
  std::string details;
  json extra_info = json::object();

  json to_json() const {
    return json{{"type", type}, {"message", message}, {"details", details}, {"extra_info", extra_info}};
  }
};

// An exception that carries a ComfyUI error kind; `type` names the Python exception class
// ComfyUI would have raised ("FileNotFoundError", "ValueError", "graph.DependencyCycleError"),
// because execution errors report it as `exception_type`.
class ComfyError : public std::runtime_error {
 public:
  ComfyError(std::string type, const std::string& message)
      : std::runtime_error(message), type_(std::move(type)) {}
  const std::string& type() const { return type_; }

 private:
  std::string type_;
};

// Raised when a prompt is interrupted; never reported as an error, only as execution_interrupted.
class InterruptedError : public std::runtime_error {
 public:
  InterruptedError() : std::runtime_error("Processing interrupted") {}
};

}  // namespace comfy
