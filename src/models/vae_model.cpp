#include "models/vae_model.h"

#include <malloc.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>

#include "core/error.h"
#include "models/weight_pages.h"
#include "nn/matmul.h"
#include "nn/taesd.h"

namespace comfy {

namespace {

// Python's round() on a float: half to even (the default FE_TONEAREST mode).
int64_t py_round(double v) { return static_cast<int64_t>(std::nearbyint(v)); }

// ComfyUI sizes its VAE batches from free memory (memory_used_decode = 2178*h*w*64 floats per
// latent item, memory_used_encode = 1767*H*W per image); every item is computed on its own
// either way, so the split only bounds memory here. A fixed budget stands in for free memory.
constexpr double kBatchBudgetBytes = 8.0 * (1u << 30);

int64_t batch_number(double bytes_per_item) {
  return std::max<int64_t>(1, static_cast<int64_t>(kBatchBudgetBytes / std::max(1.0, bytes_per_item)));
}

// Peak working memory of nn::vae_decode per latent pixel of one item, in bytes: at the
// full-resolution level of SD's decoder, the first res block holds its 256-channel input, its
// 128-channel shortcut and the kernel's reordered copy of the input (about 2.5 KB per output
// pixel, 64 output pixels per latent pixel), measured at 512x512 with some margin. ComfyUI's
// own figure (2178*64 floats) is for PyTorch's allocations.
double decode_bytes_per_latent_pixel(const nn::VaeConfig& cfg) {
  const double c = static_cast<double>(cfg.ch);  // 128 for SD
  const double per_output_pixel = 4.0 * c * 6.0;  // 3 KB at ch = 128
  return per_output_pixel * static_cast<double>(cfg.compression() * cfg.compression());
}

// Memory a decode may use: COMFY_MEMORY_AVAILABLE_MB when set (a budget, e.g. on a shared
// machine), else the kernel's MemAvailable (free memory plus reclaimable page cache).
double available_bytes() {
  if (const char* env = std::getenv("COMFY_MEMORY_AVAILABLE_MB")) return std::atof(env) * 1024.0 * 1024.0;
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  double kb = 0;
  std::string unit;
  while (meminfo >> key >> kb >> unit)
    if (key == "MemAvailable:") return kb * 1024.0;
  return 8.0 * (1u << 30);
}

// Before a decode, the stages before it (text encoders, the diffusion model) are done: their
// mapped weight pages leave this process's resident set (they stay in the page cache and come
// back on the next read), the networks' conversion buffers are freed, and malloc returns its
// free pages to the system. This is where a 512x512 text-to-image run would otherwise peak.
void release_before_decode() {
  release_all_weight_pages();
  nn::release_scratch();
  ::malloc_trim(0);
}

at::Tensor process_output(const at::Tensor& x) { return at::clamp((x + 1.0) / 2.0, 0.0, 1.0); }
at::Tensor process_input(const at::Tensor& x) { return x * 2.0 - 1.0; }

}  // namespace

Vae::Vae(Weights w, nn::VaeConfig cfg)
    : kind_(Kind::kl), weights_(std::move(w)), cfg_(std::move(cfg)), latent_channels_(cfg_.embed_dim) {}

std::shared_ptr<const Vae> Vae::taesd(const Weights& w) {
  auto v = std::shared_ptr<Vae>(new Vae());
  v->kind_ = Kind::taesd;
  v->weights_ = w;
  v->latent_channels_ = nn::taesd_latent_channels(w.sub("taesd_decoder."));
  if (w.has("vae_scale")) v->taesd_scale_ = w.set->raw(w.prefix + "vae_scale").to(at::kDouble).item<double>();
  if (w.has("vae_shift")) v->taesd_shift_ = w.set->raw(w.prefix + "vae_shift").to(at::kDouble).item<double>();
  return v;
}

std::shared_ptr<const Vae> Vae::pixel_space() {
  auto v = std::shared_ptr<Vae>(new Vae());
  v->kind_ = Kind::pixel_space;
  return v;
}

std::shared_ptr<const Vae> make_vae(const Weights& w) {
  if (w.has("decoder.up_blocks.0.resnets.0.norm1.weight"))
    throw ComfyError("RuntimeError", "diffusers-format VAE files are not supported yet: convert '" + w.prefix +
                                         "decoder.up_blocks.*' to the original layout");
  if (w.has("taesd_decoder.1.weight")) return Vae::taesd(w);
  if (w.has("pixel_space_vae")) return Vae::pixel_space();
  return std::make_shared<const Vae>(w, nn::vae_config_from_weights(w));
}

at::Tensor Vae::decode_raw(const at::Tensor& z) const {
  if (kind_ == Kind::pixel_space) return z;
  if (kind_ == Kind::taesd) return nn::taesd_decode(weights_.sub("taesd_decoder."), z, taesd_scale_, taesd_shift_);
  return nn::vae_decode(cfg_, weights_, z);
}

at::Tensor Vae::encode_raw(const at::Tensor& pixels) const {
  at::Tensor x = process_input(pixels);
  if (kind_ == Kind::pixel_space) return x;
  if (kind_ == Kind::taesd) {
    if (!weights_.has("taesd_encoder.0.weight"))
      throw ComfyError("RuntimeError", "this TAESD has no encoder weights ('taesd_encoder.0.weight')");
    return nn::taesd_encode(weights_.sub("taesd_encoder."), x, taesd_scale_, taesd_shift_);
  }
  return nn::vae_encode(cfg_, weights_, x);
}

at::Tensor Vae::crop_pixels(const at::Tensor& image) const {
  if (image.dim() < 3) throw ComfyError("ValueError", "VAE encode expects an IMAGE [B,H,W,C], got " + c10::str(image.sizes()));
  at::Tensor pixels = image;
  const int64_t r = spacial_compression_encode();
  for (int64_t d = 1; d < pixels.dim() - 1; ++d) {
    int64_t size = pixels.size(d), x = (size / r) * r, offset = (size % r) / 2;
    if (x != size) pixels = pixels.narrow(d, offset, x);
  }
  if (pixels.size(-1) > output_channels()) pixels = pixels.narrow(-1, 0, output_channels());
  return pixels;
}

at::Tensor Vae::decode(const at::Tensor& latent) const {
  c10::InferenceMode guard;
  at::Tensor samples = latent;
  if (samples.dim() == 5) samples = samples.select(2, 0);
  if (samples.dim() != 4)
    throw ComfyError("RuntimeError", "VAE decode expects a latent [B,C,h,w], got " + c10::str(samples.sizes()));
  if (samples.size(1) != latent_channels())
    throw ComfyError("RuntimeError", "VAE decode: the latent has " + std::to_string(samples.size(1)) +
                                         " channels, this VAE takes " + std::to_string(latent_channels()));
  samples = samples.to(at::kFloat);
  const int64_t b = samples.size(0);
  int64_t step = batch_number(2178.0 * samples.size(2) * samples.size(3) * 64 * 4);
  if (kind_ == Kind::kl) {
    release_before_decode();
    // ComfyUI decodes in batches of free memory / memory_used_decode, and when a decode runs
    // out of memory it decodes tiled instead (decode_tiled_ with its defaults). On the CPU an
    // allocation does not fail (the OOM killer ends the process), so the estimate decides.
    const double per_item = decode_bytes_per_latent_pixel(cfg_) * static_cast<double>(samples.size(2) * samples.size(3));
    const double available = available_bytes();
    if (per_item > available) {
      std::cerr << "Warning: Ran out of memory when regular VAE decoding, retrying with tiled VAE decoding.\n";
      return decode_tiled(samples);
    }
    step = std::max<int64_t>(1, static_cast<int64_t>(available / per_item));
  }
  std::vector<at::Tensor> parts;
  for (int64_t i = 0; i < b; i += step)
    parts.push_back(process_output(decode_raw(samples.narrow(0, i, std::min(step, b - i)))));
  at::Tensor out = parts.size() == 1 ? parts[0] : at::cat(parts, 0);
  out = out.movedim(1, -1).contiguous();
  if (kind_ == Kind::kl) ::malloc_trim(0);
  return out;
}

at::Tensor Vae::encode(const at::Tensor& image) const {
  c10::InferenceMode guard;
  at::Tensor pixels = crop_pixels(image).to(at::kFloat).movedim(-1, 1);
  if (pixels.dim() != 4) throw ComfyError("ValueError", "VAE encode expects an IMAGE [B,H,W,C], got " + c10::str(image.sizes()));
  const int64_t b = pixels.size(0);
  const int64_t step = batch_number(1767.0 * pixels.size(2) * pixels.size(3) * 4);
  std::vector<at::Tensor> parts;
  for (int64_t i = 0; i < b; i += step) parts.push_back(encode_raw(pixels.narrow(0, i, std::min(step, b - i))));
  return (parts.size() == 1 ? parts[0] : at::cat(parts, 0)).contiguous();
}

at::Tensor tiled_scale(const at::Tensor& samples, const std::function<at::Tensor(const at::Tensor&)>& fn, int64_t tile_x,
                       int64_t tile_y, int64_t overlap, double scale, int64_t out_channels) {
  const int64_t tile[2] = {tile_y, tile_x};
  const int64_t size[2] = {samples.size(2), samples.size(3)};
  for (int d = 0; d < 2; ++d)
    if (size[d] > tile[d] && tile[d] - overlap <= 0)
      throw ComfyError("ValueError", "range() arg 3 must not be zero");  // Python's range step check
  at::Tensor output = at::empty({samples.size(0), out_channels, py_round(size[0] * scale), py_round(size[1] * scale)},
                                samples.options().dtype(at::kFloat));
  for (int64_t b = 0; b < samples.size(0); ++b) {
    at::Tensor s = samples.narrow(0, b, 1);
    if (size[0] <= tile[0] && size[1] <= tile[1]) {
      output.narrow(0, b, 1).copy_(fn(s));
      continue;
    }
    at::Tensor out = at::zeros({1, out_channels, output.size(2), output.size(3)}, output.options());
    at::Tensor out_div = at::zeros_like(out);
    // range(0, size - overlap, tile - overlap) when the side needs tiles, else [0].
    std::vector<int64_t> positions[2];
    for (int d = 0; d < 2; ++d) {
      if (size[d] > tile[d])
        for (int64_t p = 0; p < size[d] - overlap; p += tile[d] - overlap) positions[d].push_back(p);
      else
        positions[d].push_back(0);
    }
    const int64_t feather = py_round(overlap * scale);
    for (int64_t py : positions[0])
      for (int64_t px : positions[1]) {
        at::Tensor s_in = s;
        int64_t up[2];
        const int64_t it[2] = {py, px};
        for (int d = 0; d < 2; ++d) {
          int64_t pos = std::max<int64_t>(0, std::min(size[d] - overlap, it[d]));
          int64_t l = std::min(tile[d], size[d] - pos);
          s_in = s_in.narrow(d + 2, pos, l);
          up[d] = py_round(pos * scale);
        }
        at::Tensor ps = fn(s_in);
        at::Tensor mask = at::ones_like(ps);
        for (int64_t d = 2; d < 4; ++d) {
          if (feather >= mask.size(d)) continue;
          for (int64_t t = 0; t < feather; ++t) {
            double a = static_cast<double>(t + 1) / static_cast<double>(feather);
            mask.narrow(d, t, 1).mul_(a);
            mask.narrow(d, mask.size(d) - 1 - t, 1).mul_(a);
          }
        }
        at::Tensor o = out.narrow(2, up[0], mask.size(2)).narrow(3, up[1], mask.size(3));
        at::Tensor od = out_div.narrow(2, up[0], mask.size(2)).narrow(3, up[1], mask.size(3));
        o.add_(ps * mask);
        od.add_(mask);
      }
    output.narrow(0, b, 1).copy_(out / out_div);
  }
  return output;
}

at::Tensor Vae::decode_tiled(const at::Tensor& latent, int64_t tile_x, int64_t tile_y, int64_t overlap) const {
  c10::InferenceMode guard;
  if (latent.dim() != 4)
    throw ComfyError("RuntimeError", "tiled VAE decode expects a latent [B,C,h,w], got " + c10::str(latent.sizes()));
  if (latent.size(1) != latent_channels())
    throw ComfyError("RuntimeError", "VAE decode: the latent has " + std::to_string(latent.size(1)) +
                                         " channels, this VAE takes " + std::to_string(latent_channels()));
  at::Tensor samples = latent.to(at::kFloat);
  if (kind_ == Kind::kl) release_before_decode();
  auto fn = [this](const at::Tensor& a) { return decode_raw(a); };
  const double up = static_cast<double>(upscale_ratio());
  const int64_t ch = output_channels();
  at::Tensor sum = tiled_scale(samples, fn, tile_x / 2, tile_y * 2, overlap, up, ch) +
                   tiled_scale(samples, fn, tile_x * 2, tile_y / 2, overlap, up, ch) +
                   tiled_scale(samples, fn, tile_x, tile_y, overlap, up, ch);
  return process_output(sum / 3.0).movedim(1, -1).contiguous();
}

at::Tensor Vae::encode_tiled(const at::Tensor& image, int64_t tile_x, int64_t tile_y, int64_t overlap) const {
  c10::InferenceMode guard;
  at::Tensor pixels = crop_pixels(image).to(at::kFloat).movedim(-1, 1);
  if (pixels.dim() != 4) throw ComfyError("ValueError", "VAE encode expects an IMAGE [B,H,W,C], got " + c10::str(image.sizes()));
  auto fn = [this](const at::Tensor& a) { return encode_raw(a); };
  const double down = 1.0 / static_cast<double>(downscale_ratio());
  const int64_t ch = latent_channels();
  at::Tensor samples = tiled_scale(pixels, fn, tile_x, tile_y, overlap, down, ch);
  samples += tiled_scale(pixels, fn, tile_x * 2, tile_y / 2, overlap, down, ch);
  samples += tiled_scale(pixels, fn, tile_x / 2, tile_y * 2, overlap, down, ch);
  samples /= 3.0;
  return samples;
}

}  // namespace comfy
