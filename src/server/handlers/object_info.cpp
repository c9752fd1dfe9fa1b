// GET /object_info and /object_info/{node_class} (an unknown class answers 200 {}).
#include <spdlog/spdlog.h>

#include "server/handlers/handlers.h"

namespace comfy::server {

Response get_object_info(Context& ctx, Request&) {
  json out = json::object();
  for (auto& def : ctx.registry.all()) {
    try {
      out[def.name] = ctx.registry.object_info(def, ctx.services);
    } catch (const std::exception& e) {
      spdlog::error("[ERROR] An error occurred while retrieving information for the '{}' node: {}", def.name, e.what());
    }
  }
  return Response::json_body(out);
}

Response get_object_info_node(Context& ctx, Request& req) {
  json out = json::object();
  std::string name = req.param("node_class");
  if (const NodeDef* def = ctx.registry.find(name)) out[name] = ctx.registry.object_info(*def, ctx.services);
  return Response::json_body(out);
}

}  // namespace comfy::server
