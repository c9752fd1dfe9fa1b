#include "nn/taesd.h"

#include <string>

#include "core/error.h"
#include "nn/layers.h"

namespace comfy::nn {

namespace {

// Block: relu(conv(relu(conv(relu(conv(x))))) + skip(x)); skip is a 1x1 conv only when the
// widths differ (never in TAESD's 64-wide blocks).
at::Tensor block(const Weights& w, const at::Tensor& x) {
  at::Tensor h = at::relu(conv2d(w.sub("conv.0."), x, 1, 1));
  h = at::relu(conv2d(w.sub("conv.2."), h, 1, 1));
  h = conv2d(w.sub("conv.4."), h, 1, 1);
  at::Tensor skip = w.has("skip.weight") ? conv2d(w.sub("skip."), x) : x;
  return at::relu(h + skip);
}

Weights layer(const Weights& w, int i) { return w.sub(std::to_string(i) + "."); }

}  // namespace

int64_t taesd_latent_channels(const Weights& decoder) {
  if (!decoder.has("1.weight")) throw ComfyError("RuntimeError", "TAESD decoder weights are missing '1.weight'");
  return decoder.shape("1.weight").at(1);
}

at::Tensor taesd_encode(const Weights& e, const at::Tensor& x, double scale, double shift) {
  at::Tensor h = conv2d(layer(e, 0), x * 0.5 + 0.5, 1, 1);
  h = block(layer(e, 1), h);
  // Three stages: a stride-2 conv (no bias) then three blocks.
  for (int stage = 0; stage < 3; ++stage) {
    int base = 2 + stage * 4;
    h = conv2d(layer(e, base), h, 2, 1);
    for (int i = 1; i <= 3; ++i) h = block(layer(e, base + i), h);
  }
  h = conv2d(layer(e, 14), h, 1, 1);
  return h / scale + shift;
}

at::Tensor taesd_decode(const Weights& d, const at::Tensor& z, double scale, double shift) {
  at::Tensor h = (z - shift) * scale;
  h = at::tanh(h / 3) * 3;  // Clamp
  h = at::relu(conv2d(layer(d, 1), h, 1, 1));
  // Three stages: three blocks, nearest x2, a conv (no bias).
  for (int stage = 0; stage < 3; ++stage) {
    int base = 3 + stage * 5;
    for (int i = 0; i < 3; ++i) h = block(layer(d, base + i), h);
    h = at::upsample_nearest2d(h, {h.size(2) * 2, h.size(3) * 2});
    h = conv2d(layer(d, base + 4), h, 1, 1);
  }
  h = block(layer(d, 18), h);
  h = conv2d(layer(d, 19), h, 1, 1);
  return h.sub(0.5).mul(2);
}

}  // namespace comfy::nn
