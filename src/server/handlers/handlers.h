// Every route handler: (context, request) -> response. One file per area; routes.cpp wires them.
#pragma once
#include <filesystem>
#include <optional>

#include "server/context.h"
#include "server/http.h"

namespace comfy::server {

#define COMFY_HANDLER(name) Response name(Context& ctx, Request& req)

// prompt.cpp
COMFY_HANDLER(get_prompt);
COMFY_HANDLER(post_prompt);
// queue.cpp
COMFY_HANDLER(get_queue);
COMFY_HANDLER(post_queue);
COMFY_HANDLER(post_interrupt);
COMFY_HANDLER(post_free);
// history.cpp
COMFY_HANDLER(get_history);
COMFY_HANDLER(get_history_by_id);
COMFY_HANDLER(post_history);
COMFY_HANDLER(get_jobs);
COMFY_HANDLER(get_job_by_id);
// object_info.cpp
COMFY_HANDLER(get_object_info);
COMFY_HANDLER(get_object_info_node);
// files.cpp (view and upload)
COMFY_HANDLER(get_view);
COMFY_HANDLER(get_view_metadata);
COMFY_HANDLER(post_upload_image);
COMFY_HANDLER(post_upload_mask);
// system.cpp
COMFY_HANDLER(get_root);
COMFY_HANDLER(get_ws);
COMFY_HANDLER(get_system_stats);
COMFY_HANDLER(get_features);
COMFY_HANDLER(get_extensions);
COMFY_HANDLER(get_embeddings);
COMFY_HANDLER(get_internal_logs);
COMFY_HANDLER(get_internal_logs_raw);
COMFY_HANDLER(patch_internal_logs_subscribe);
COMFY_HANDLER(get_internal_folder_paths);
COMFY_HANDLER(get_internal_files);
COMFY_HANDLER(get_workflow_templates);
COMFY_HANDLER(get_i18n);
COMFY_HANDLER(get_global_subgraphs);
COMFY_HANDLER(get_global_subgraph);
// models.cpp
COMFY_HANDLER(get_models);
COMFY_HANDLER(get_models_folder);
COMFY_HANDLER(get_experiment_models);
COMFY_HANDLER(get_experiment_models_folder);
// userdata.cpp (users, settings, user files)
COMFY_HANDLER(get_users);
COMFY_HANDLER(post_users);
COMFY_HANDLER(get_settings);
COMFY_HANDLER(get_setting);
COMFY_HANDLER(post_settings);
COMFY_HANDLER(post_setting);
COMFY_HANDLER(get_userdata);
COMFY_HANDLER(get_userdata_v2);
COMFY_HANDLER(get_userdata_file);
COMFY_HANDLER(post_userdata_file);
COMFY_HANDLER(delete_userdata_file);
COMFY_HANDLER(post_userdata_move);

#undef COMFY_HANDLER

// Shared helpers (common.cpp).
// The request body parsed as JSON; malformed JSON throws (-> ComfyUI's plain-text 500).
json body_json(const Request& req);
// `rel` under `base`, or nullopt when it would leave it (.., absolute, NUL, symlinks out).
std::optional<std::filesystem::path> contained_path(const std::filesystem::path& base, const std::string& rel);
bool is_within(const std::filesystem::path& base, const std::filesystem::path& p);
double file_time_seconds(const std::filesystem::path& p, bool created);

}  // namespace comfy::server
