// multipart/form-data bodies (aiohttp's request.post()) for the upload routes.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "server/http.h"

namespace comfy::server {

struct FormPart {
  std::string name;
  bool is_file = false;  // the part had a filename parameter
  std::string filename;
  std::string data;
};

struct Multipart {
  std::vector<FormPart> parts;
  const FormPart* get(const std::string& name) const;            // the first part of that name
  std::optional<std::string> value(const std::string& name) const;  // its data
};

// Throws std::runtime_error for a body that is not multipart/form-data (aiohttp: 500 there too).
Multipart parse_multipart(const Request& req);

}  // namespace comfy::server
