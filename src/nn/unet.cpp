#include "nn/unet.h"

#include <ATen/ExpandUtils.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "core/error.h"
#include "nn/layers.h"
#include "nn/unet_blocks.h"
#include "nn/unet_encoder.h"

namespace comfy {

namespace {

std::string str(int64_t i) { return std::to_string(i); }

std::string fmt_shape(const at::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + str(t.size(i));
  return s + "]";
}

// The key names under a Weights view, sorted, with ComfyUI's count_blocks and prefix tests.
struct KeyIndex {
  std::vector<std::string> keys;
  bool has_prefix(const std::string& p) const {
    auto it = std::lower_bound(keys.begin(), keys.end(), p);
    return it != keys.end() && it->compare(0, p.size(), p) == 0;
  }
  // How many of prefix0, prefix1, ... (`prefix` + n + `suffix`) exist, counting from 0.
  int64_t count_blocks(const std::string& prefix, const std::string& suffix) const {
    int64_t n = 0;
    while (has_prefix(prefix + str(n) + suffix)) ++n;
    return n;
  }
};

struct TransformerInfo {
  int64_t depth = 0;
  int64_t context_dim = 0;
  bool use_linear = false;
};

// calculate_transformer_depth: a block whose position 1 holds transformer_blocks.
std::optional<TransformerInfo> transformer_at(const KeyIndex& idx, const Weights& w, const std::string& block) {
  const std::string tp = block + "1.transformer_blocks.";
  if (!idx.has_prefix(tp)) return std::nullopt;
  TransformerInfo info;
  info.depth = idx.count_blocks(tp, "");
  info.context_dim = w.shape(tp + "0.attn2.to_k.weight").at(1);
  info.use_linear = w.shape(block + "1.proj_in.weight").size() == 2;
  return info;
}

json int_list(const std::vector<int64_t>& v) {
  json a = json::array();
  for (int64_t x : v) a.push_back(x);
  return a;
}

}  // namespace

json UNetConfig::to_json() const {
  return json{{"in_channels", in_channels},
              {"out_channels", out_channels},
              {"model_channels", model_channels},
              {"channel_mult", int_list(channel_mult)},
              {"num_res_blocks", int_list(num_res_blocks)},
              {"transformer_depth", int_list(transformer_depth)},
              {"transformer_depth_output", int_list(transformer_depth_output)},
              {"transformer_depth_middle", transformer_depth_middle},
              {"context_dim", context_dim},
              {"num_heads", num_heads},
              {"num_head_channels", num_head_channels},
              {"use_linear_in_transformer", use_linear_in_transformer},
              {"adm_in_channels", adm_in_channels}};
}

UNetConfig detect_unet_config(const Weights& w) {
  KeyIndex idx{w.keys()};
  if (!w.has("input_blocks.0.0.weight")) {
    throw ComfyError("RuntimeError", "not a UNet: no '" + w.prefix + "input_blocks.0.0.weight'");
  }
  UNetConfig c;
  if (w.has("label_emb.0.0.weight")) c.adm_in_channels = w.shape("label_emb.0.0.weight").at(1);
  const auto first = w.shape("input_blocks.0.0.weight");
  c.model_channels = first.at(0);
  c.in_channels = first.at(1);
  c.out_channels = w.has("out.2.weight") ? w.shape("out.2.weight").at(0) : 4;
  c.channel_mult.clear();
  c.num_res_blocks.clear();
  c.context_dim = 0;

  // Walk the input blocks; output block (count-1-i) mirrors input block i, so the output depths
  // come out in ComfyUI's order (last output block first).
  int64_t last_res_blocks = 0, last_mult = 0;
  bool have_context = false;
  const int64_t count = idx.count_blocks("input_blocks.", ".");
  for (int64_t i = 0; i < count; ++i) {
    const std::string prefix = "input_blocks." + str(i) + ".";
    const std::string prefix_out = "output_blocks." + str(count - i - 1) + ".";
    if (w.has(prefix + "0.op.weight")) {
      c.num_res_blocks.push_back(last_res_blocks);
      c.channel_mult.push_back(last_mult);
      last_res_blocks = 0;
      last_mult = 0;
      auto t = transformer_at(idx, w, prefix_out);
      c.transformer_depth_output.push_back(t ? t->depth : 0);
      continue;
    }
    if (w.has(prefix + "0.in_layers.0.weight")) {
      ++last_res_blocks;
      last_mult = w.shape(prefix + "0.out_layers.3.weight").at(0) / c.model_channels;
      auto t = transformer_at(idx, w, prefix);
      c.transformer_depth.push_back(t ? t->depth : 0);
      if (t && !have_context) {
        have_context = true;
        c.context_dim = t->context_dim;
        c.use_linear_in_transformer = t->use_linear;
      }
    }
    if (w.has(prefix_out + "0.in_layers.0.weight")) {
      auto t = transformer_at(idx, w, prefix_out);
      c.transformer_depth_output.push_back(t ? t->depth : 0);
    }
  }
  c.num_res_blocks.push_back(last_res_blocks);
  c.channel_mult.push_back(last_mult);
  if (w.has("middle_block.1.proj_in.weight")) {
    c.transformer_depth_middle = idx.count_blocks("middle_block.1.transformer_blocks.", "");
  } else if (w.has("middle_block.0.in_layers.0.weight")) {
    c.transformer_depth_middle = -1;
  } else {
    c.transformer_depth_middle = -2;
  }
  unet::set_heads_from_structure(c);
  return c;
}

namespace {

// ComfyUI's apply_control: the residual lists are consumed from their back; an undefined entry is
// None (nothing to add); a residual of the wrong shape is skipped with a warning, as ComfyUI does.
void apply_control(at::Tensor& h, std::vector<at::Tensor>* list, const char* name) {
  if (!list || list->empty()) return;
  at::Tensor ctrl = list->back();
  list->pop_back();
  if (!ctrl.defined()) return;
  // `h += ctrl` in ComfyUI: broadcasting into h's shape works, anything else is skipped.
  bool fits = ctrl.dim() <= h.dim();
  if (fits) {
    try {
      fits = at::infer_size(h.sizes(), ctrl.sizes()) == h.sizes().vec();
    } catch (const c10::Error&) {
      fits = false;
    }
  }
  if (!fits) {
    spdlog::warn("warning control could not be applied {} {} ({})", fmt_shape(h), fmt_shape(ctrl), name);
    return;
  }
  h = h + ctrl.to(h.scalar_type());
}

}  // namespace

at::Tensor unet_forward(const UNetConfig& c, const Weights& w, const at::Tensor& x, const at::Tensor& timesteps_in,
                        const at::Tensor& context_in, const std::optional<at::Tensor>& y,
                        const UNetControl* control) {
  if (x.dim() != 4 || x.size(1) != c.in_channels) {
    throw ComfyError("RuntimeError", "UNet input must be [B," + str(c.in_channels) + ",H,W], got " +
                                         fmt_shape(x));
  }
  const int64_t batch = x.size(0);
  at::Tensor timesteps = timesteps_in.reshape({-1});
  if (timesteps.numel() == 1 && batch > 1) timesteps = timesteps.expand({batch});
  at::Tensor context = context_in.to(x.scalar_type());

  std::vector<at::Tensor> ctrl_input, ctrl_middle, ctrl_output;
  if (control) {
    ctrl_input = control->input;
    ctrl_middle = control->middle;
    ctrl_output = control->output;
  }

  at::Tensor emb = unet::timestep_embedding(timesteps, c.model_channels).to(x.scalar_type());
  emb = nn::linear(w.sub("time_embed.2."), at::silu(nn::linear(w.sub("time_embed.0."), emb)));
  if (c.adm_in_channels > 0) {
    if (!y || !y->defined()) throw ComfyError("RuntimeError", "this UNet needs the adm input y");
    at::Tensor l = nn::linear(w.sub("label_emb.0.0."), y->to(x.scalar_type()));
    emb = emb + nn::linear(w.sub("label_emb.0.2."), at::silu(l));
  }

  std::vector<at::Tensor> hs;
  at::Tensor h = nn::conv2d(w.sub("input_blocks.0.0."), x, 1, 1);
  apply_control(h, &ctrl_input, "input");
  hs.push_back(h);
  h = unet::input_blocks(c, w, h, emb, context, [&](at::Tensor& out) {
    apply_control(out, &ctrl_input, "input");
    hs.push_back(out);
  });
  h = unet::middle_block(c, w, h, emb, context);
  apply_control(h, &ctrl_middle, "middle");

  const size_t levels = c.channel_mult.size();
  std::vector<int64_t> depth_out = c.transformer_depth_output;  // consumed from the back
  int64_t out_block = 0;
  for (size_t li = levels; li-- > 0;) {
    const int64_t ch = c.channel_mult[li] * c.model_channels;
    for (int64_t i = 0; i <= c.num_res_blocks.at(li); ++i, ++out_block) {
      at::Tensor hsp = hs.back();
      hs.pop_back();
      apply_control(hsp, &ctrl_output, "output");
      h = at::cat({h, hsp}, 1);
      hsp.reset();
      const Weights bw = w.sub("output_blocks." + str(out_block) + ".");
      h = unet::res_block(bw.sub("0."), h, emb);
      int64_t depth = 0;
      if (!depth_out.empty()) {
        depth = depth_out.back();
        depth_out.pop_back();
      }
      int64_t pos = 1;
      if (depth > 0) {
        h = unet::spatial_transformer(bw.sub("1."), h, context, unet::heads_for(c, ch), depth, c.use_linear_in_transformer);
        pos = 2;
      }
      if (li > 0 && i == c.num_res_blocks[li]) {
        // Upsample to the size of the skip it meets next (odd sizes), else twice the size.
        int64_t oh = h.size(2) * 2, ow = h.size(3) * 2;
        if (!hs.empty()) {
          oh = hs.back().size(2);
          ow = hs.back().size(3);
        }
        h = unet::upsample(bw.sub(str(pos) + ".conv."), h, oh, ow);
      }
    }
  }
  h = nn::group_norm_silu(w.sub("out.0."), h, 32, 1e-5);
  return nn::conv2d(w.sub("out.2."), h, 1, 1);
}

namespace unet {

void set_heads_from_structure(UNetConfig& c) {
  if (!c.use_linear_in_transformer && c.adm_in_channels == 0) {
    c.num_heads = 8;
    c.num_head_channels = -1;
  } else {
    c.num_heads = -1;
    c.num_head_channels = 64;
  }
}

int64_t heads_for(const UNetConfig& c, int64_t channels) {
  if (c.num_head_channels == -1) return c.num_heads;
  return std::max<int64_t>(1, channels / c.num_head_channels);
}

at::Tensor input_blocks(const UNetConfig& c, const Weights& w, at::Tensor h, const at::Tensor& emb,
                        const at::Tensor& context, const std::function<void(at::Tensor&)>& after_block) {
  int64_t block = 1;
  size_t depth_pos = 0;
  const size_t levels = c.channel_mult.size();
  for (size_t level = 0; level < levels; ++level) {
    const int64_t ch = c.channel_mult[level] * c.model_channels;
    for (int64_t nr = 0; nr < c.num_res_blocks.at(level); ++nr, ++block) {
      const Weights bw = w.sub("input_blocks." + std::to_string(block) + ".");
      h = res_block(bw.sub("0."), h, emb);
      const int64_t depth = depth_pos < c.transformer_depth.size() ? c.transformer_depth[depth_pos] : 0;
      ++depth_pos;
      if (depth > 0) h = spatial_transformer(bw.sub("1."), h, context, heads_for(c, ch), depth, c.use_linear_in_transformer);
      after_block(h);
    }
    if (level + 1 != levels) {
      h = downsample(w.sub("input_blocks." + std::to_string(block) + ".0.op."), h);
      ++block;
      after_block(h);
    }
  }
  return h;
}

at::Tensor middle_block(const UNetConfig& c, const Weights& w, at::Tensor h, const at::Tensor& emb,
                        const at::Tensor& context) {
  const int64_t mid_ch = c.channel_mult.back() * c.model_channels;
  if (c.transformer_depth_middle >= -1) {
    h = res_block(w.sub("middle_block.0."), h, emb);
    if (c.transformer_depth_middle >= 0) {
      h = spatial_transformer(w.sub("middle_block.1."), h, context, heads_for(c, mid_ch), c.transformer_depth_middle,
                              c.use_linear_in_transformer);
      h = res_block(w.sub("middle_block.2."), h, emb);
    }
  }
  return h;
}

}  // namespace unet
}  // namespace comfy
