// `comfycpp models download` and `comfycpp models missing` (issue 6):
//   models download URL --directory FOLDER [--sha256 HEX] [--filename NAME] [--size BYTES]
//       the file into the model folder, through NAME.part, resumed if a .part is there, verified,
//       with a progress bar on a terminal
//   models missing WORKFLOW [--download]
//       every model the workflow (API or UI JSON, or a PNG/WebP carrying one) references, and
//       where it was found: exact path, same name elsewhere, same hash, downloaded, or missing
// Both take --json and ComfyUI's directory flags; tokens and the hosts allow-list come from the
// environment (HF_TOKEN, CIVITAI_API_TOKEN, COMFYCPP_DOWNLOAD_TOKENS, COMFYCPP_DOWNLOAD_HOSTS,
// COMFYCPP_ALLOW_PICKLE_DOWNLOADS; see DownloadOptions::from_env).
#pragma once
#include <CLI/CLI.hpp>

namespace comfy {

void add_download_commands(CLI::App& models, int* exit_code);

struct DownloadState;
// The progress bar `models download`, `missing --download` and `catalog install` draw on stderr.
void draw_download_progress(const DownloadState& s);

}  // namespace comfy
