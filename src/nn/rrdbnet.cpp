#include "nn/rrdbnet.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "core/error.h"
#include "nn/layers.h"

namespace comfy::nn {

namespace {

using Layout = RRDBNetConfig::Layout;

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }

// The integer that follows `prefix` in `key` (up to the next '.'), or -1.
int64_t index_after(const std::string& key, const std::string& prefix) {
  if (!starts_with(key, prefix)) return -1;
  size_t end = key.find('.', prefix.size());
  std::string digits = key.substr(prefix.size(), end == std::string::npos ? std::string::npos : end - prefix.size());
  if (digits.empty() || digits.size() > 6 || digits.find_first_not_of("0123456789") != std::string::npos) return -1;
  return std::stoll(digits);
}

// 1 + the largest N of the keys "<prefix>N...", 0 when there is none (spandrel's get_seq_len).
int64_t seq_len(const std::vector<std::string>& keys, const std::string& prefix) {
  int64_t n = 0;
  for (auto& k : keys) n = std::max(n, index_after(k, prefix) + 1);
  return n;
}

[[noreturn]] void bad(const std::string& what) {
  throw ComfyError("RuntimeError", "ESRGAN (RRDBNet) weights do not add up: " + what);
}

at::Tensor lrelu(const at::Tensor& x) { return at::leaky_relu(x, 0.2); }

at::Tensor conv3(const Weights& w, const std::string& prefix, const at::Tensor& x) {
  return conv2d(w.sub(prefix), x, 1, 1);
}

at::Tensor dense_block(const Weights& w, const RRDBNetConfig& cfg, int64_t b, int r, const at::Tensor& x) {
  at::Tensor x1 = lrelu(conv3(w, cfg.dense_conv(b, r, 1), x));
  at::Tensor x2 = lrelu(conv3(w, cfg.dense_conv(b, r, 2), at::cat({x, x1}, 1)));
  if (cfg.plus) x2 = x2 + conv2d(w.sub(cfg.conv1x1(b, r)), x);
  at::Tensor x3 = lrelu(conv3(w, cfg.dense_conv(b, r, 3), at::cat({x, x1, x2}, 1)));
  at::Tensor x4 = lrelu(conv3(w, cfg.dense_conv(b, r, 4), at::cat({x, x1, x2, x3}, 1)));
  if (cfg.plus) x4 = x4 + x2;
  at::Tensor x5 = conv3(w, cfg.dense_conv(b, r, 5), at::cat({x, x1, x2, x3, x4}, 1));
  return x5 * 0.2 + x;
}

at::Tensor rrdb(const Weights& w, const RRDBNetConfig& cfg, int64_t b, const at::Tensor& x) {
  at::Tensor out = dense_block(w, cfg, b, 1, x);
  out = dense_block(w, cfg, b, 2, out);
  out = dense_block(w, cfg, b, 3, out);
  return out * 0.2 + x;
}

// The prefix of the first of `names` present (as "<name>.weight"), or "" when none is.
std::string first_present(const Weights& w, std::initializer_list<std::string> names) {
  for (auto& n : names)
    if (w.has(n + ".weight")) return n + ".";
  return "";
}

}  // namespace

std::string RRDBNetConfig::dense_conv(int64_t block, int rdb, int conv) const {
  const std::string b = std::to_string(block), r = std::to_string(rdb), c = std::to_string(conv);
  switch (layout) {
    case Layout::Original: return "model.1.sub." + b + ".RDB" + r + ".conv" + c + ".0.";
    case Layout::RealESRGAN: return "body." + b + ".rdb" + r + ".conv" + c + ".";
    case Layout::BSRGAN: return "RRDB_trunk." + b + ".RDB" + r + ".conv" + c + ".";
  }
  return {};
}

std::string RRDBNetConfig::conv1x1(int64_t block, int rdb) const {
  const std::string b = std::to_string(block), r = std::to_string(rdb);
  switch (layout) {
    case Layout::Original: return "model.1.sub." + b + ".RDB" + r + ".conv1x1.";
    case Layout::RealESRGAN: return "body." + b + ".rdb" + r + ".conv1x1.";
    case Layout::BSRGAN: return "RRDB_trunk." + b + ".RDB" + r + ".conv1x1.";
  }
  return {};
}

std::string RRDBNetConfig::describe() const {
  const char* keys = layout == Layout::Original ? "original ESRGAN keys"
                     : layout == Layout::RealESRGAN ? "Real-ESRGAN keys"
                                                    : "BSRGAN keys";
  std::string s = std::string(plus ? "ESRGAN+" : "ESRGAN") + " (" + keys + ") " + std::to_string(scale()) +
                  "x, nf " + std::to_string(nf) + ", nb " + std::to_string(nb) + ", gc " + std::to_string(gc) +
                  ", " + std::to_string(image_in_channels()) + "->" + std::to_string(out_nc) + " channels";
  if (shuffle > 1) s += ", pixel-unshuffle " + std::to_string(shuffle);
  return s;
}

std::optional<RRDBNetConfig> detect_rrdbnet(const Weights& w) {
  RRDBNetConfig cfg;
  const std::vector<std::string> keys = w.keys();
  if (w.has("model.0.weight") &&
      (w.has("model.1.sub.0.RDB1.conv1.0.weight") || w.has("model.1.sub.0.RDB1.conv1x1.weight"))) {
    cfg.layout = Layout::Original;
    int64_t nb = 0;
    for (auto& k : keys)
      if (index_after(k, "model.1.sub.") >= 0 && k.find(".RDB") != std::string::npos)
        nb = std::max(nb, index_after(k, "model.1.sub.") + 1);
    cfg.nb = nb;
    const int64_t len = seq_len(keys, "model.");
    if (len < 5 || (len - 5) % 3 != 0)
      bad("the top-level sequence model.0 .. model." + std::to_string(len - 1) +
          " is not first conv, trunk, (upsample, conv, act) x n, HR conv, act, last conv");
    cfg.upsamples = (len - 5) / 3;
    cfg.first = "model.0.";
    cfg.trunk = "model.1.sub." + std::to_string(nb) + ".";
    for (int64_t i = 1; i <= cfg.upsamples; ++i) cfg.ups.push_back("model." + std::to_string(3 * i) + ".");
    cfg.hr = "model." + std::to_string(3 * cfg.upsamples + 2) + ".";
    cfg.last = "model." + std::to_string(len - 1) + ".";
  } else if (w.has("conv_first.weight") && w.has("conv_last.weight") &&
             ((w.has("body.0.rdb1.conv1.weight") && w.has("conv_body.weight")) ||
              (w.has("RRDB_trunk.0.RDB1.conv1.weight") && w.has("trunk_conv.weight")))) {
    const bool real = w.has("body.0.rdb1.conv1.weight") && w.has("conv_body.weight");
    cfg.layout = real ? Layout::RealESRGAN : Layout::BSRGAN;
    cfg.nb = seq_len(keys, real ? "body." : "RRDB_trunk.");
    cfg.first = "conv_first.";
    cfg.trunk = real ? "conv_body." : "trunk_conv.";
    cfg.last = "conv_last.";
    int64_t n = 0;
    for (auto& k : keys)
      for (const char* p : {"upconv", "conv_up"}) {
        const std::string prefix = p;
        if (starts_with(k, prefix) && k.size() > prefix.size() + 1 && std::isdigit(static_cast<unsigned char>(k[prefix.size()])) &&
            k[prefix.size() + 1] == '.')
          n = std::max<int64_t>(n, k[prefix.size()] - '0');
      }
    cfg.upsamples = n;
    for (int64_t i = 1; i <= n; ++i) {
      std::string p = first_present(w, {"conv_up" + std::to_string(i), "upconv" + std::to_string(i)});
      if (p.empty()) bad("upsample conv conv_up" + std::to_string(i) + " is missing (there is a conv_up" + std::to_string(n) + ")");
      cfg.ups.push_back(p);
    }
    cfg.hr = first_present(w, {"conv_hr", "HRconv"});
    if (cfg.hr.empty()) bad("the HR conv (conv_hr / HRconv) is missing");
  } else {
    return std::nullopt;
  }

  cfg.plus = false;
  for (auto& k : keys)
    if (k.find(".conv1x1.") != std::string::npos) cfg.plus = true;
  if (cfg.nb < 1) bad("no RRDB blocks");
  for (const std::string* p : {&cfg.first, &cfg.trunk, &cfg.hr, &cfg.last})
    if (!w.has(*p + "weight")) bad("'" + *p + "weight' is missing");
  for (auto& p : cfg.ups)
    if (!w.has(p + "weight")) bad("the upsample conv '" + p + "weight' is missing");

  const std::vector<int64_t> first = w.shape(cfg.first + "weight"), last = w.shape(cfg.last + "weight");
  if (first.size() != 4 || last.size() != 4) bad("the first and last convs are not 2-D convolutions");
  cfg.nf = first[0];
  cfg.in_nc = first[1];
  cfg.out_nc = last[0];
  const std::string c1 = cfg.dense_conv(0, 1, 1) + "weight";
  if (!w.has(c1)) bad("'" + c1 + "' is missing");
  cfg.gc = w.shape(c1).at(0);
  // spandrel: a first conv taking 4x or 16x the output channels means a pixel-unshuffled input.
  if (cfg.in_nc == cfg.out_nc * 4 || cfg.in_nc == cfg.out_nc * 16)
    cfg.shuffle = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(cfg.in_nc / cfg.out_nc))));
  if (cfg.upsamples > 4 || (int64_t{1} << cfg.upsamples) < cfg.shuffle)
    bad(std::to_string(cfg.upsamples) + " upsample stages with a pixel-unshuffle of " + std::to_string(cfg.shuffle));
  return cfg;
}

at::Tensor rrdbnet_forward(const Weights& w, const RRDBNetConfig& cfg, const at::Tensor& input) {
  at::Tensor x = input;
  const int64_t h = x.size(2), wd = x.size(3);
  if (cfg.shuffle > 1) {
    const int64_t f = cfg.shuffle;
    const int64_t pad_h = (f - h % f) % f, pad_w = (f - wd % f) % f;
    if (pad_h || pad_w) x = at::reflection_pad2d(x, {0, pad_w, 0, pad_h});
    x = at::pixel_unshuffle(x, f);
  }
  at::Tensor fea = conv3(w, cfg.first, x);
  at::Tensor t = fea;
  for (int64_t b = 0; b < cfg.nb; ++b) t = rrdb(w, cfg, b, t);
  fea = fea + conv3(w, cfg.trunk, t);
  for (auto& up : cfg.ups) {
    fea = at::upsample_nearest2d(fea, {fea.size(2) * 2, fea.size(3) * 2});
    fea = lrelu(conv3(w, up, fea));
  }
  fea = lrelu(conv3(w, cfg.hr, fea));
  at::Tensor out = conv3(w, cfg.last, fea);
  if (cfg.shuffle > 1) {
    const int64_t s = cfg.scale();
    out = out.narrow(2, 0, h * s).narrow(3, 0, wd * s);
  }
  return out;
}

}  // namespace comfy::nn
