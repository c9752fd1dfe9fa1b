#include "nodes/latent_preview.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "graph/services.h"
#include "io/jpeg.h"
#include "models/checkpoint.h"
#include "models/folder_paths.h"
#include "nn/taesd.h"

namespace comfy {
namespace {

// preview_to_image: [-1,1] -> 0..255, truncated as torch's uint8 cast does.
at::Tensor to_u8(const at::Tensor& hwc) {
  return ((hwc.to(at::kFloat) + 1.0) / 2.0).clamp(0, 1).mul(255).to(at::kByte);
}

// server.send_image: ImageOps.contain(image, (size, size), BILINEAR), then JPEG quality 95.
std::string fit_and_encode(const at::Tensor& hwc_u8, int size) {
  at::Tensor img = hwc_u8;
  int64_t h = img.size(0), w = img.size(1);
  if (size > 0 && (h != size || w != size) && std::max(h, w) != size) {
    double ratio = std::min(static_cast<double>(size) / w, static_cast<double>(size) / h);
    int64_t nw = std::max<int64_t>(1, std::lround(w * ratio)), nh = std::max<int64_t>(1, std::lround(h * ratio));
    at::Tensor f = img.permute({2, 0, 1}).unsqueeze(0).to(at::kFloat);
    f = at::upsample_bilinear2d(f, {nh, nw}, false);
    img = f.squeeze(0).permute({1, 2, 0}).round().clamp(0, 255).to(at::kByte);
  }
  img = img.contiguous();
  return io::encode_jpeg(img.data_ptr<uint8_t>(), static_cast<uint32_t>(img.size(1)),
                         static_cast<uint32_t>(img.size(0)), 95);
}

// The first file of models/vae_approx whose name starts with the family's decoder name.
std::shared_ptr<const WeightSet> find_taesd_decoder(const ExecutionContext& ctx, const LatentFormat& format) {
  const Services& s = ctx.services();
  if (!s.folders || !s.list_folder) return nullptr;
  for (const std::string& name : s.list_folder("vae_approx")) {
    if (name.rfind(format.taesd_decoder_name, 0) != 0) continue;
    auto path = s.folders->get_full_path("vae_approx", name);
    if (path) return load_weight_file(*path);
  }
  return nullptr;
}

}  // namespace

at::Tensor latent2rgb_preview(const LatentFormat& format, const at::Tensor& x0) {
  const int64_t c = static_cast<int64_t>(format.latent_rgb_factors.size());
  at::Tensor factors = at::empty({c, 3}, at::kFloat);
  for (int64_t i = 0; i < c; ++i)
    for (int64_t j = 0; j < 3; ++j) factors[i][j] = format.latent_rgb_factors[i][j];
  at::Tensor bias = at::tensor({format.latent_rgb_factors_bias[0], format.latent_rgb_factors_bias[1],
                                format.latent_rgb_factors_bias[2]}, at::kFloat);
  at::Tensor first = x0.dim() == 5 ? x0.select(0, 0).select(1, 0) : x0.select(0, 0);  // [C,h,w]
  at::Tensor rgb = at::matmul(first.to(at::kFloat).movedim(0, -1), factors) + bias;
  return to_u8(rgb);
}

LatentPreviewer get_previewer(const ExecutionContext& ctx, const LatentFormat& format) {
  if (!ctx.wants_preview()) return {};
  const int size = ctx.preview_size();
  if (ctx.preview_method() == "taesd") {
    if (auto decoder = find_taesd_decoder(ctx, format)) {
      Weights w(decoder);
      return [w, size](const at::Tensor& x0) {
        at::Tensor first = x0.dim() == 5 ? x0.select(2, 0) : x0;
        at::Tensor image = nn::taesd_decode(w, first.slice(0, 0, 1).to(at::kFloat), 1.0, 0.0);
        return fit_and_encode(to_u8(image[0].movedim(0, 2)), size);
      };
    }
    spdlog::warn("Warning: TAESD previews enabled, but could not find models/vae_approx/{}", format.taesd_decoder_name);
  }
  if (format.latent_rgb_factors.empty()) return {};
  return [format, size](const at::Tensor& x0) { return fit_and_encode(latent2rgb_preview(format, x0), size); };
}

void report_step(const ExecutionContext& ctx, const LatentPreviewer& previewer, int64_t value, int64_t total,
                 const at::Tensor& x0) {
  std::string jpeg;
  if (previewer && x0.defined()) jpeg = previewer(x0);
  ctx.progress(static_cast<double>(value), static_cast<double>(total));
  if (!jpeg.empty()) ctx.preview(jpeg);
}

}  // namespace comfy
