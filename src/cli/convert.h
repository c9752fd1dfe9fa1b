// `comfycpp convert WORKFLOW --to api`: prints the API prompt a UI workflow (or an image carrying
// one) becomes, as the frontend's "Export (API)" would.
#pragma once
#include <string>

#include "cli/app.h"

namespace comfy {

int convert_command(const DirectoryArgs& dirs, const std::string& workflow, const std::string& to);

}  // namespace comfy
