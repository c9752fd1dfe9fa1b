// The route table and the middlewares ComfyUI runs around it (origin check or CORS,
// cache-control), and the one place where a handler's exception becomes ComfyUI's answer.
#pragma once
#include "server/context.h"
#include "server/http.h"

namespace comfy::server {

class Router {
 public:
  explicit Router(Context& ctx);
  Response handle(Request& req);

 private:
  using Fn = Response (*)(Context&, Request&);
  struct Route {
    std::string method;
    std::vector<std::string> segments;  // "{name}" for a parameter, "{name:.*}" for the rest
    Fn fn;
  };
  void add(const std::string& method, const std::string& path, Fn fn, bool api_too = true);
  Response dispatch(Request& req);
  bool origin_refused(const Request& req) const;
  Context& ctx_;
  std::vector<Route> routes_;
};

}  // namespace comfy::server
