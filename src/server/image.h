// The few picture operations the file routes need (no torch): /view's channel=rgb|a and
// preview=webp|jpeg re-encodes, and /upload/mask's alpha merge. PNG in; PNG, WebP, JPEG out.
#pragma once
#include <string>

namespace comfy::server {

// channel=rgb: the picture without alpha; channel=a (`alpha`): RGB zero, alpha kept (255 when
// the picture has none). PNG out.
bool extract_channel(const std::string& png, bool alpha, std::string& out, std::string& error);
// preview=<format>;<quality>: `format` "webp" or "jpeg"; `drop_alpha` converts to RGB first.
bool encode_preview(const std::string& png, const std::string& format, int quality, bool drop_alpha,
                    std::string& out, std::string& error);
// The original picture with its alpha channel replaced by the mask upload's alpha. PNG out.
bool merge_mask_alpha(const std::string& original_png, const std::string& mask_png, std::string& out,
                      std::string& error);

}  // namespace comfy::server
