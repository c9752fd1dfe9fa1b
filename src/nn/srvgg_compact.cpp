#include "nn/srvgg_compact.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "nn/layers.h"

namespace comfy::nn {

namespace {

std::string body(int64_t i) { return "body." + std::to_string(i) + "."; }

[[noreturn]] void bad(const std::string& what) {
  throw ComfyError("RuntimeError", "RealESRGAN Compact (SRVGGNetCompact) weights do not add up: " + what);
}

bool is_square(int64_t n) {
  int64_t r = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(n))));
  return r * r == n;
}

}  // namespace

std::string SRVGGCompactConfig::describe() const {
  return "RealESRGAN Compact " + std::to_string(scale) + "x, nf " + std::to_string(num_feat) + ", " +
         std::to_string(num_conv) + " convs, " + std::to_string(in_nc) + "->" + std::to_string(out_nc) + " channels";
}

std::optional<SRVGGCompactConfig> detect_srvgg_compact(const Weights& w) {
  if (!w.has("body.0.weight") || !w.has("body.1.weight")) return std::nullopt;
  int64_t len = 0;
  for (auto& k : w.keys()) {
    if (k.rfind("body.", 0) != 0) continue;
    size_t end = k.find('.', 5);
    std::string digits = k.substr(5, end == std::string::npos ? std::string::npos : end - 5);
    if (!digits.empty() && digits.size() < 7 && digits.find_first_not_of("0123456789") == std::string::npos)
      len = std::max<int64_t>(len, std::stoll(digits) + 1);
  }
  const int64_t highest = len - 1;
  if (highest < 2 || highest % 2 != 0) bad("body.0 .. body." + std::to_string(highest) + " is not conv, (PReLU, conv) x n");
  SRVGGCompactConfig cfg;
  const std::vector<int64_t> first = w.shape("body.0.weight");
  if (first.size() != 4) bad("body.0.weight is not a 2-D convolution");
  cfg.num_feat = first[0];
  cfg.in_nc = first[1];
  cfg.num_conv = (highest - 2) / 2;
  for (int64_t i = 0; i <= highest; ++i)
    if (!w.has(body(i) + "weight")) bad("'" + body(i) + "weight' is missing");
  if (!w.has(body(highest) + "bias")) bad("'" + body(highest) + "bias' is missing");
  const int64_t shuffled = w.shape(body(highest) + "bias").at(0);
  bool found = false;
  for (int64_t c : {cfg.in_nc, int64_t{3}, int64_t{4}, int64_t{1}}) {
    if (c > 0 && shuffled % c == 0 && is_square(shuffled / c)) {
      cfg.out_nc = c;
      cfg.scale = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(shuffled / c))));
      found = true;
      break;
    }
  }
  if (!found)
    bad("the last conv has " + std::to_string(shuffled) +
        " channels, which is not scale^2 x 1, 3 or 4 output channels");
  return cfg;
}

at::Tensor srvgg_compact_forward(const Weights& w, const SRVGGCompactConfig& cfg, const at::Tensor& x) {
  at::Tensor out = conv2d(w.sub(body(0)), x, 1, 1);
  out = at::prelu(out, w(body(1) + "weight", out.scalar_type()));
  for (int64_t i = 0; i < cfg.num_conv; ++i) {
    out = conv2d(w.sub(body(2 * i + 2)), out, 1, 1);
    out = at::prelu(out, w(body(2 * i + 3) + "weight", out.scalar_type()));
  }
  out = conv2d(w.sub(body(2 * cfg.num_conv + 2)), out, 1, 1);
  out = at::pixel_shuffle(out, cfg.scale);
  at::Tensor base = at::upsample_nearest2d(x, {x.size(2) * cfg.scale, x.size(3) * cfg.scale});
  return out + base;
}

}  // namespace comfy::nn
