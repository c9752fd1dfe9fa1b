// Follows comfy/t2i_adapter/adapter.py (Adapter, ResnetBlock, Adapter_light, extractor).
#include "nn/t2i_adapter.h"

#include <string>

#include "core/error.h"
#include "nn/layers.h"

namespace comfy {
namespace {

std::string str(int64_t i) { return std::to_string(i); }

bool has_key_ending(const std::vector<std::string>& keys, const std::string& end) {
  for (const auto& k : keys)
    if (k.size() >= end.size() && k.compare(k.size() - end.size(), end.size(), end) == 0) return true;
  return false;
}

// Downsample without a conv: 2x2 average pooling, padded by one where the size is odd.
at::Tensor avg_down(const at::Tensor& x) {
  return at::avg_pool2d(x, {2, 2}, {2, 2}, {x.size(2) % 2, x.size(3) % 2}, false, true);
}

// ResnetBlock (sk=True: in_conv only when the width changes, no skep conv unless stored).
at::Tensor resnet_block(const T2IAdapterConfig& c, const Weights& w, at::Tensor x, bool down) {
  const int64_t pad = c.ksize / 2;
  if (down) x = c.use_conv ? nn::conv2d(w.sub("down_opt.op."), x, 2, 1) : avg_down(x);
  if (w.has("in_conv.weight")) x = nn::conv2d(w.sub("in_conv."), x, 1, pad);
  at::Tensor h = nn::conv2d(w.sub("block2."), at::relu(nn::conv2d(w.sub("block1."), x, 1, 1)), 1, pad);
  if (w.has("skep.weight")) return h + nn::conv2d(w.sub("skep."), x, 1, pad);
  return h + x;
}

}  // namespace

T2IAdapterConfig detect_t2i_adapter_config(const Weights& w) {
  T2IAdapterConfig c;
  if (w.has("body.0.in_conv.weight")) {
    c.light = true;
    c.cin = w.shape("body.0.in_conv.weight").at(1);
    for (int64_t i = 0; w.has("body." + str(i) + ".out_conv.weight"); ++i)
      c.channels.push_back(w.shape("body." + str(i) + ".out_conv.weight").at(0));
    c.nums_rb = 0;
    while (w.has("body.0.body." + str(c.nums_rb) + ".block1.weight")) ++c.nums_rb;
    return c;
  }
  if (w.has("conv_in.weight")) {
    const auto conv_in = w.shape("conv_in.weight");
    c.cin = conv_in.at(1);
    const int64_t ch = conv_in.at(0);
    c.channels = {ch, ch * 2, ch * 4, ch * 4};
    c.nums_rb = 2;
    c.ksize = w.shape("body.0.block2.weight").at(2);
    c.use_conv = has_key_ending(w.keys(), "down_opt.op.weight");
    c.xl = c.cin == 256 || c.cin == 768;
    return c;
  }
  throw ComfyError("RuntimeError", "not a T2I adapter: no '" + w.prefix + "conv_in.weight' or '" + w.prefix +
                                       "body.0.in_conv.weight'");
}

UNetControl t2i_adapter_forward(const T2IAdapterConfig& c, const Weights& w, const at::Tensor& hint) {
  if (hint.dim() != 4 || hint.size(1) != c.input_channels())
    throw ComfyError("RuntimeError", "T2I adapter hint must have " + str(c.input_channels()) + " channels");
  at::Tensor x = at::pixel_unshuffle(hint, c.unshuffle_amount());
  std::vector<at::Tensor> features;  // in ComfyUI's order before the final reversal
  const int64_t levels = static_cast<int64_t>(c.channels.size());
  if (c.light) {
    for (int64_t i = 0; i < levels; ++i) {
      const Weights bw = w.sub("body." + str(i) + ".");
      if (i > 0) x = avg_down(x);
      x = nn::conv2d(bw.sub("in_conv."), x, 1, 0);
      for (int64_t r = 0; r < c.nums_rb; ++r) {
        const Weights rw = bw.sub("body." + str(r) + ".");
        x = nn::conv2d(rw.sub("block2."), at::relu(nn::conv2d(rw.sub("block1."), x, 1, 1)), 1, 1) + x;
      }
      x = nn::conv2d(bw.sub("out_conv."), x, 1, 0);
      features.insert(features.end(), {at::Tensor(), at::Tensor(), x});
    }
    return UNetControl{{features.rbegin(), features.rend()}, {}, {}};
  }
  x = nn::conv2d(w.sub("conv_in."), x, 1, 1);
  for (int64_t i = 0; i < levels; ++i) {
    for (int64_t j = 0; j < c.nums_rb; ++j) {
      const bool down = j == 0 && (c.xl ? i == 2 : (i >= 1 && i <= 3));
      x = resnet_block(c, w.sub("body." + str(i * c.nums_rb + j) + "."), x, down);
    }
    if (c.xl) {
      features.emplace_back();
      if (i == 0) features.insert(features.end(), {at::Tensor(), at::Tensor()});
      if (i == 2) features.emplace_back();
    } else {
      features.insert(features.end(), {at::Tensor(), at::Tensor()});
    }
    features.push_back(x);
  }
  std::vector<at::Tensor> reversed(features.rbegin(), features.rend());
  UNetControl out;
  if (c.xl) {
    out.middle.assign(reversed.begin(), reversed.begin() + 1);
    out.input.assign(reversed.begin() + 1, reversed.end());
  } else {
    out.input = std::move(reversed);
  }
  return out;
}

}  // namespace comfy
