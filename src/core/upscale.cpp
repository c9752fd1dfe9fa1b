#include "core/upscale.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <vector>

#include "core/error.h"

namespace comfy {
namespace {

// ---- lanczos: Pillow's Image.resize(LANCZOS) on 8-bit images (Resample.c), bit for bit ----

constexpr int kPrecisionBits = 32 - 8 - 2;

double sinc(double x) {
  if (x == 0.0) return 1.0;
  x *= M_PI;
  return std::sin(x) / x;
}
double lanczos_filter(double x) { return (-3.0 <= x && x < 3.0) ? sinc(x) * sinc(x / 3) : 0.0; }

struct Coeffs {
  int ksize = 0;
  std::vector<int> bounds;  // xmin, count per output sample
  std::vector<int> k;       // fixed point, ksize per output sample
};

Coeffs precompute(int in_size, int out_size) {
  double scale = static_cast<double>(in_size) / out_size, filterscale = std::max(scale, 1.0);
  double support = 3.0 * filterscale;
  Coeffs c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.bounds.resize(out_size * 2);
  c.k.assign(static_cast<size_t>(out_size) * c.ksize, 0);
  std::vector<double> w(c.ksize);
  for (int xx = 0; xx < out_size; ++xx) {
    double center = (xx + 0.5) * scale, ww = 0.0, ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    std::fill(w.begin(), w.end(), 0.0);
    for (int x = 0; x < xmax; ++x) {
      w[x] = lanczos_filter((x + xmin - center + 0.5) * ss);
      ww += w[x];
    }
    for (int x = 0; x < xmax; ++x)
      if (ww != 0.0) w[x] /= ww;
    for (int x = 0; x < c.ksize; ++x) {
      double v = w[x] * (1 << kPrecisionBits);
      c.k[static_cast<size_t>(xx) * c.ksize + x] = static_cast<int>(w[x] < 0 ? -0.5 + v : 0.5 + v);
    }
    c.bounds[xx * 2] = xmin;
    c.bounds[xx * 2 + 1] = xmax;
  }
  return c;
}

uint8_t clip8(int v) {
  int s = v >> kPrecisionBits;
  return static_cast<uint8_t>(s < 0 ? 0 : s > 255 ? 255 : s);
}

// One pass along an axis of an interleaved 8-bit image [h][w][ch].
std::vector<uint8_t> resample_h(const std::vector<uint8_t>& in, int w, int h, int ch, int out_w) {
  Coeffs c = precompute(w, out_w);
  std::vector<uint8_t> out(static_cast<size_t>(out_w) * h * ch);
  for (int y = 0; y < h; ++y)
    for (int xx = 0; xx < out_w; ++xx) {
      int xmin = c.bounds[xx * 2], xmax = c.bounds[xx * 2 + 1];
      const int* k = &c.k[static_cast<size_t>(xx) * c.ksize];
      for (int b = 0; b < ch; ++b) {
        int ss = 1 << (kPrecisionBits - 1);
        for (int x = 0; x < xmax; ++x) ss += in[(static_cast<size_t>(y) * w + x + xmin) * ch + b] * k[x];
        out[(static_cast<size_t>(y) * out_w + xx) * ch + b] = clip8(ss);
      }
    }
  return out;
}

std::vector<uint8_t> resample_v(const std::vector<uint8_t>& in, int w, int h, int ch, int out_h) {
  Coeffs c = precompute(h, out_h);
  std::vector<uint8_t> out(static_cast<size_t>(w) * out_h * ch);
  for (int yy = 0; yy < out_h; ++yy) {
    int ymin = c.bounds[yy * 2], ymax = c.bounds[yy * 2 + 1];
    const int* k = &c.k[static_cast<size_t>(yy) * c.ksize];
    for (int x = 0; x < w; ++x)
      for (int b = 0; b < ch; ++b) {
        int ss = 1 << (kPrecisionBits - 1);
        for (int y = 0; y < ymax; ++y) ss += in[(static_cast<size_t>(y + ymin) * w + x) * ch + b] * k[y];
        out[(static_cast<size_t>(yy) * w + x) * ch + b] = clip8(ss);
      }
  }
  return out;
}

uint8_t muldiv255(int a, int b) {
  int t = a * b + 128;
  return static_cast<uint8_t>(((t >> 8) + t) >> 8);
}

// [C,H,W] float -> uint8 as ComfyUI does (clip(255*x) truncated), resized, -> float /255.
at::Tensor lanczos_one(const at::Tensor& chw, int64_t width, int64_t height) {
  int ch = static_cast<int>(chw.size(0)), h = static_cast<int>(chw.size(1)), w = static_cast<int>(chw.size(2));
  at::Tensor u8 = (chw.permute({1, 2, 0}).to(at::kFloat) * 255.0f).clamp(0, 255).to(at::kByte).contiguous();
  std::vector<uint8_t> px(u8.data_ptr<uint8_t>(), u8.data_ptr<uint8_t>() + u8.numel());
  bool rgba = ch == 4;  // Pillow resizes RGBA premultiplied (RGBa) and converts back
  if (rgba)
    for (size_t i = 0; i < px.size(); i += 4)
      for (int b = 0; b < 3; ++b) px[i + b] = muldiv255(px[i + b], px[i + 3]);
  int cw = w, chh = h;
  if (width != w) {
    px = resample_h(px, cw, chh, ch, static_cast<int>(width));
    cw = static_cast<int>(width);
  }
  if (height != h) {
    px = resample_v(px, cw, chh, ch, static_cast<int>(height));
    chh = static_cast<int>(height);
  }
  if (rgba)
    for (size_t i = 0; i < px.size(); i += 4) {
      int a = px[i + 3];
      if (a == 0 || a == 255) continue;
      for (int b = 0; b < 3; ++b) px[i + b] = static_cast<uint8_t>(std::min(255, (255 * px[i + b]) / a));
    }
  at::Tensor out = at::from_blob(px.data(), {chh, cw, ch}, at::kByte).to(at::kFloat) / 255.0f;
  return out.permute({2, 0, 1}).contiguous();
}

at::Tensor lanczos(const at::Tensor& samples, int64_t width, int64_t height) {
  std::vector<at::Tensor> images;
  for (int64_t i = 0; i < samples.size(0); ++i) images.push_back(lanczos_one(samples[i], width, height));
  return at::stack(images).to(samples.device(), samples.scalar_type());
}

// ---- bislerp: comfy.utils.bislerp ----

at::Tensor slerp(const at::Tensor& b1, const at::Tensor& b2, const at::Tensor& r) {
  int64_t c = b1.size(-1);
  at::Tensor n1 = at::norm(b1, 2, {-1}, true), n2 = at::norm(b2, 2, {-1}, true);
  at::Tensor z1 = n1.expand({-1, c}) == 0.0, z2 = n2.expand({-1, c}) == 0.0;
  at::Tensor b1n = at::where(z1, at::zeros({}, b1.options()), b1 / n1);
  at::Tensor b2n = at::where(z2, at::zeros({}, b2.options()), b2 / n2);
  at::Tensor dot = (b1n * b2n).sum(1);
  at::Tensor omega = at::acos(dot), so = at::sin(omega);
  at::Tensor rs = r.squeeze(1);
  at::Tensor res = (at::sin((1.0 - rs) * omega) / so).unsqueeze(1) * b1n + (at::sin(rs * omega) / so).unsqueeze(1) * b2n;
  res = res * (n1 * (1.0 - r) + n2 * r).expand({-1, c});
  at::Tensor same = (dot > 1 - 1e-5).unsqueeze(1).expand({-1, c});
  at::Tensor opposite = (dot < 1e-5 - 1).unsqueeze(1).expand({-1, c});
  res = at::where(same, b1, res);
  res = at::where(opposite, b1 * (1.0 - r) + b2 * r, res);
  return res;
}

struct BilinearData {
  at::Tensor ratios, coords1, coords2;
};

BilinearData bilinear_data(int64_t length_old, int64_t length_new, const at::Device& device) {
  auto opts = at::TensorOptions().dtype(at::kFloat).device(device);
  at::Tensor c1 = at::arange(length_old, opts).reshape({1, 1, 1, -1});
  c1 = at::upsample_bilinear2d(c1, {1, length_new}, false);
  BilinearData d;
  d.ratios = c1 - c1.floor();
  d.coords1 = c1.to(at::kLong);
  at::Tensor c2 = at::arange(length_old, opts).reshape({1, 1, 1, -1}) + 1;
  c2.select(3, length_old - 1) -= 1;
  c2 = at::upsample_bilinear2d(c2, {1, length_new}, false);
  d.coords2 = c2.to(at::kLong);
  return d;
}

at::Tensor bislerp(const at::Tensor& input, int64_t width, int64_t height) {
  auto dtype = input.scalar_type();
  at::Tensor samples = input.to(at::kFloat);
  int64_t n = samples.size(0), c = samples.size(1), h = samples.size(2), w = samples.size(3);
  BilinearData d = bilinear_data(w, width, samples.device());
  at::Tensor c1 = d.coords1.expand({n, c, h, -1}), c2 = d.coords2.expand({n, c, h, -1});
  at::Tensor ratios = d.ratios.expand({n, 1, h, -1});
  at::Tensor p1 = samples.gather(-1, c1).movedim(1, -1).reshape({-1, c});
  at::Tensor p2 = samples.gather(-1, c2).movedim(1, -1).reshape({-1, c});
  at::Tensor result = slerp(p1, p2, ratios.movedim(1, -1).reshape({-1, 1}));
  result = result.reshape({n, h, width, c}).movedim(-1, 1);

  d = bilinear_data(h, height, samples.device());
  c1 = d.coords1.reshape({1, 1, -1, 1}).expand({n, c, -1, width});
  c2 = d.coords2.reshape({1, 1, -1, 1}).expand({n, c, -1, width});
  ratios = d.ratios.reshape({1, 1, -1, 1}).expand({n, 1, -1, width});
  p1 = result.gather(-2, c1).movedim(1, -1).reshape({-1, c});
  p2 = result.gather(-2, c2).movedim(1, -1).reshape({-1, c});
  result = slerp(p1, p2, ratios.movedim(1, -1).reshape({-1, 1}));
  return result.reshape({n, height, width, c}).movedim(-1, 1).to(dtype);
}

at::Tensor interpolate(const at::Tensor& s, int64_t width, int64_t height, const std::string& method) {
  std::vector<int64_t> size{height, width};
  if (method == "nearest-exact") return at::_upsample_nearest_exact2d(s, size, c10::nullopt, c10::nullopt);
  if (method == "nearest") return at::upsample_nearest2d(s, size, c10::nullopt, c10::nullopt);
  if (method == "bilinear") return at::upsample_bilinear2d(s, size, false, c10::nullopt, c10::nullopt);
  if (method == "bicubic") return at::upsample_bicubic2d(s, size, false, c10::nullopt, c10::nullopt);
  if (method == "area") return at::adaptive_avg_pool2d(s, size);
  throw ComfyError("NotImplementedError", "Got 4D input, but " + method + " mode is not supported");
}

}  // namespace

at::Tensor common_upscale(const at::Tensor& input, int64_t width, int64_t height, const std::string& upscale_method,
                          const std::string& crop) {
  if (input.dim() < 4) throw ComfyError("ValueError", "common_upscale: expected [B,C,H,W] samples");
  // Pillow refuses empty sizes with a ValueError, torch's interpolate with a RuntimeError.
  if ((width <= 0 || height <= 0) && upscale_method == "lanczos")
    throw ComfyError("ValueError", "height and width must be > 0");
  if (width <= 0 || height <= 0)
    throw ComfyError("RuntimeError", "Input and output sizes should be greater than 0, but got input (H: " +
                                         std::to_string(input.size(-2)) + ", W: " + std::to_string(input.size(-1)) +
                                         ") output (H: " + std::to_string(height) + ", W: " + std::to_string(width) + ")");
  int64_t planes = input.numel() / std::max<int64_t>(1, input.size(-1) * input.size(-2));
  if (width * height > (int64_t(1) << 31) / std::max<int64_t>(1, planes))
    throw ComfyError("ValueError", "common_upscale: the output size " + std::to_string(width) + "x" +
                                       std::to_string(height) + " is too large");
  std::vector<int64_t> orig(input.sizes().begin(), input.sizes().end());
  at::Tensor samples = input;
  if (orig.size() > 4) {
    samples = samples.reshape({orig[0], orig[1], -1, orig[orig.size() - 2], orig.back()}).movedim(2, 1);
    samples = samples.reshape({-1, orig[1], orig[orig.size() - 2], orig.back()});
  }
  at::Tensor s = samples;
  if (crop == "center") {
    int64_t old_w = samples.size(-1), old_h = samples.size(-2);
    double old_aspect = static_cast<double>(old_w) / old_h, new_aspect = static_cast<double>(width) / height;
    int64_t x = 0, y = 0;
    if (old_aspect > new_aspect)
      x = static_cast<int64_t>(std::nearbyint((old_w - old_w * (new_aspect / old_aspect)) / 2));
    else if (old_aspect < new_aspect)
      y = static_cast<int64_t>(std::nearbyint((old_h - old_h * (old_aspect / new_aspect)) / 2));
    s = samples.narrow(-2, y, old_h - y * 2).narrow(-1, x, old_w - x * 2);
  }
  at::Tensor out;
  if (upscale_method == "bislerp") out = bislerp(s, width, height);
  else if (upscale_method == "lanczos") out = lanczos(s, width, height);
  else out = interpolate(s, width, height, upscale_method);
  if (orig.size() == 4) return out;
  std::vector<int64_t> shape{orig[0], -1, orig[1], height, width};
  out = out.reshape(shape).movedim(2, 1);
  std::vector<int64_t> final_shape(orig.begin(), orig.end() - 2);
  final_shape.push_back(height);
  final_shape.push_back(width);
  return out.reshape(final_shape);
}

at::Tensor upscale_image(const at::Tensor& image, int64_t width, int64_t height, const std::string& upscale_method,
                         const std::string& crop) {
  return common_upscale(image.movedim(-1, 1), width, height, upscale_method, crop).movedim(1, -1);
}

}  // namespace comfy
