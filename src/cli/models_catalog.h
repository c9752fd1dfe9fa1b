// `comfycpp models catalog` (issue 6, "Catalog"):
//   models catalog [--json]                  every known model, and whether it is installed
//   models catalog search TEXT [--json]      the entries matching every word of TEXT
//   models catalog install NAME [--wait]     downloads the entry into its folder, verified against
//                                            its size and SHA-256 (skipped when the file is there
//                                            with that hash); the CLI always waits for the download
//                                            and draws a progress bar, --wait is accepted for scripts
// Each takes --catalog FILE (repeatable: more catalog files, overriding by name), --json,
// --allow-pickle (install) and ComfyUI's directory flags. The catalog: data/models/catalog.json,
// <user directory>/catalog.json, `catalogs:` in extra_model_paths.yaml, $COMFYCPP_CATALOG.
#pragma once
#include <CLI/CLI.hpp>

namespace comfy {

void add_catalog_commands(CLI::App& models, int* exit_code);

}  // namespace comfy
