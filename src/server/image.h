// The few picture operations the file routes need (no torch): /view's channel=rgb|a and
// preview=webp|jpeg re-encodes, and /upload/mask's alpha merge. PNG, JPEG or WebP in; PNG, WebP,
// JPEG out.
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

// Why an /upload/image body must be refused, or "" when it may be stored: PNG, JPEG and WebP must
// decode whole (header, then every row, up to 64 M pixels); GIF, BMP and TIFF pictures and the
// audio, video and 3D files the web UI also uploads through this route are recognised by their
// signature. Anything else (HTML, scripts, SVG, archives, text) is refused.
std::string upload_refusal(const std::string& bytes);

}  // namespace comfy::server
