#include "models/checkpoint_generator.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

#include "core/error.h"
#include "io/safetensors.h"

namespace comfy {

namespace {

using Shape = std::vector<int64_t>;

struct Layout {
  std::vector<GenTensor> tensors;
  void add(const std::string& name, Shape shape, GenInit init = GenInit::Normal) {
    tensors.push_back({name, std::move(shape), init});
  }
  void linear(const std::string& p, int64_t in, int64_t out, bool bias = true) {
    add(p + "weight", {out, in});
    if (bias) add(p + "bias", {out});
  }
  void conv(const std::string& p, int64_t in, int64_t out, int64_t k) {
    add(p + "weight", {out, in, k, k});
    add(p + "bias", {out});
  }
  void norm(const std::string& p, int64_t ch) {
    add(p + "weight", {ch}, GenInit::Ones);
    add(p + "bias", {ch}, GenInit::Zeros);
  }
};

std::string str(int64_t i) { return std::to_string(i); }

// ---------------------------------------------------------------- UNet (openaimodel layout)

void res_block(Layout& l, const std::string& p, int64_t in, int64_t out, int64_t emb) {
  l.norm(p + "in_layers.0.", in);
  l.conv(p + "in_layers.2.", in, out, 3);
  l.linear(p + "emb_layers.1.", emb, out);
  l.norm(p + "out_layers.0.", out);
  l.conv(p + "out_layers.3.", out, out, 3);
  if (in != out) l.conv(p + "skip_connection.", in, out, 1);
}

void spatial_transformer(Layout& l, const std::string& p, int64_t ch, int64_t context, bool use_linear,
                         bool v_bias = false) {
  l.norm(p + "norm.", ch);
  if (use_linear) l.linear(p + "proj_in.", ch, ch); else l.conv(p + "proj_in.", ch, ch, 1);
  const std::string b = p + "transformer_blocks.0.";
  l.linear(b + "attn1.to_q.", ch, ch, false);
  l.linear(b + "attn1.to_k.", ch, ch, false);
  l.linear(b + "attn1.to_v.", ch, ch, false);
  l.linear(b + "attn1.to_out.0.", ch, ch);
  l.linear(b + "ff.net.0.proj.", ch, ch * 8);  // GEGLU: value and gate, inner 4*ch each
  l.linear(b + "ff.net.2.", ch * 4, ch);
  l.linear(b + "attn2.to_q.", ch, ch, false);
  l.linear(b + "attn2.to_k.", context, ch, false);
  l.linear(b + "attn2.to_v.", context, ch, false);
  l.linear(b + "attn2.to_out.0.", ch, ch);
  l.add(b + "norm1.weight", {ch}, GenInit::Ones);
  // ComfyUI's SD20.model_type reads this bias: a population std above 0.09 means v-prediction.
  l.add(b + "norm1.bias", {ch}, v_bias ? GenInit::VBias : GenInit::Zeros);
  l.norm(b + "norm2.", ch);
  l.norm(b + "norm3.", ch);
  if (use_linear) l.linear(p + "proj_out.", ch, ch); else l.conv(p + "proj_out.", ch, ch, 1);
}

void unet(Layout& l, const GenUNetSpec& s, const std::string& p, bool v_prediction) {
  const int64_t mc = s.model_channels, emb = 4 * mc;
  l.linear(p + "time_embed.0.", mc, emb);
  l.linear(p + "time_embed.2.", emb, emb);
  l.conv(p + "input_blocks.0.0.", s.in_channels, mc, 3);
  std::vector<int64_t> chans{mc};
  int64_t ch = mc, block = 1;
  const size_t levels = s.channel_mult.size();
  for (size_t level = 0; level < levels; ++level) {
    for (int64_t nr = 0; nr < s.num_res_blocks; ++nr, ++block) {
      const std::string bp = p + "input_blocks." + str(block) + ".";
      const int64_t out = s.channel_mult[level] * mc;
      res_block(l, bp + "0.", ch, out, emb);
      ch = out;
      if (s.attention.at(level)) spatial_transformer(l, bp + "1.", ch, s.context_dim, s.use_linear);
      chans.push_back(ch);
    }
    if (level + 1 != levels) {
      l.conv(p + "input_blocks." + str(block) + ".0.op.", ch, ch, 3);
      ++block;
      chans.push_back(ch);
    }
  }
  res_block(l, p + "middle_block.0.", ch, ch, emb);
  spatial_transformer(l, p + "middle_block.1.", ch, s.context_dim, s.use_linear);
  res_block(l, p + "middle_block.2.", ch, ch, emb);
  int64_t out_block = 0;
  for (size_t li = levels; li-- > 0;) {
    for (int64_t i = 0; i <= s.num_res_blocks; ++i, ++out_block) {
      const std::string bp = p + "output_blocks." + str(out_block) + ".";
      const int64_t skip = chans.back();
      chans.pop_back();
      const int64_t out = s.channel_mult[li] * mc;
      res_block(l, bp + "0.", ch + skip, out, emb);
      ch = out;
      int64_t pos = 1;
      const bool attn = s.output_attention.empty() ? s.attention.at(li) : s.output_attention.at(out_block);
      if (attn) {
        spatial_transformer(l, bp + "1.", ch, s.context_dim, s.use_linear, v_prediction && out_block == 11);
        pos = 2;
      }
      if (li > 0 && i == s.num_res_blocks) l.conv(bp + str(pos) + ".conv.", ch, ch, 3);
    }
  }
  l.norm(p + "out.0.", ch);
  l.conv(p + "out.2.", mc, 4, 3);
}

// ---------------------------------------------------------------- VAE (LDM autoencoder layout)

void vae_resnet(Layout& l, const std::string& p, int64_t in, int64_t out) {
  l.norm(p + "norm1.", in);
  l.conv(p + "conv1.", in, out, 3);
  l.norm(p + "norm2.", out);
  l.conv(p + "conv2.", out, out, 3);
  if (in != out) l.conv(p + "nin_shortcut.", in, out, 1);
}

void vae_mid(Layout& l, const std::string& p, int64_t ch) {
  vae_resnet(l, p + "block_1.", ch, ch);
  l.norm(p + "attn_1.norm.", ch);
  for (const char* n : {"q.", "k.", "v.", "proj_out."}) l.conv(p + "attn_1." + n, ch, ch, 1);
  vae_resnet(l, p + "block_2.", ch, ch);
}

void vae(Layout& l, const GenVaeSpec& s, const std::string& p) {
  const size_t levels = s.ch_mult.size();
  l.conv(p + "encoder.conv_in.", 3, s.ch, 3);
  int64_t in = s.ch;
  for (size_t i = 0; i < levels; ++i) {
    const int64_t out = s.ch * s.ch_mult[i];
    for (int64_t j = 0; j < s.num_res_blocks; ++j) {
      vae_resnet(l, p + "encoder.down." + str(i) + ".block." + str(j) + ".", in, out);
      in = out;
    }
    if (i + 1 != levels) l.conv(p + "encoder.down." + str(i) + ".downsample.conv.", in, in, 3);
  }
  vae_mid(l, p + "encoder.mid.", in);
  l.norm(p + "encoder.norm_out.", in);
  l.conv(p + "encoder.conv_out.", in, 2 * s.z_channels, 3);
  l.conv(p + "quant_conv.", 2 * s.z_channels, 2 * s.embed_dim, 1);
  l.conv(p + "post_quant_conv.", s.embed_dim, s.z_channels, 1);
  int64_t ch = s.ch * s.ch_mult.back();
  l.conv(p + "decoder.conv_in.", s.z_channels, ch, 3);
  vae_mid(l, p + "decoder.mid.", ch);
  for (size_t i = levels; i-- > 0;) {
    const int64_t out = s.ch * s.ch_mult[i];
    for (int64_t j = 0; j <= s.num_res_blocks; ++j) {
      vae_resnet(l, p + "decoder.up." + str(i) + ".block." + str(j) + ".", ch, out);
      ch = out;
    }
    if (i != 0) l.conv(p + "decoder.up." + str(i) + ".upsample.conv.", ch, ch, 3);
  }
  l.norm(p + "decoder.norm_out.", ch);
  l.conv(p + "decoder.conv_out.", ch, 3, 3);
}

// ---------------------------------------------------------------- text encoders

void clip_l(Layout& l, const GenClipSpec& s, const std::string& p) {
  const int64_t h = s.hidden;
  l.add(p + "embeddings.position_ids", {1, s.positions}, GenInit::PositionIds);
  l.add(p + "embeddings.token_embedding.weight", {s.vocab, h});
  l.add(p + "embeddings.position_embedding.weight", {s.positions, h});
  for (int64_t i = 0; i < s.layers; ++i) {
    const std::string lp = p + "encoder.layers." + str(i) + ".";
    for (const char* n : {"k_proj.", "v_proj.", "q_proj.", "out_proj."}) l.linear(lp + "self_attn." + n, h, h);
    l.norm(lp + "layer_norm1.", h);
    l.linear(lp + "mlp.fc1.", h, s.mlp);
    l.linear(lp + "mlp.fc2.", s.mlp, h);
    l.norm(lp + "layer_norm2.", h);
  }
  l.norm(p + "final_layer_norm.", h);
}

void open_clip(Layout& l, const GenClipSpec& s, const std::string& p) {
  const int64_t h = s.hidden;
  l.add(p + "positional_embedding", {s.positions, h});
  l.add(p + "token_embedding.weight", {s.vocab, h});
  for (int64_t i = 0; i < s.layers; ++i) {
    const std::string lp = p + "transformer.resblocks." + str(i) + ".";
    l.norm(lp + "ln_1.", h);
    l.add(lp + "attn.in_proj_weight", {3 * h, h});
    l.add(lp + "attn.in_proj_bias", {3 * h});
    l.linear(lp + "attn.out_proj.", h, h);
    l.norm(lp + "ln_2.", h);
    l.linear(lp + "mlp.c_fc.", h, s.mlp);
    l.linear(lp + "mlp.c_proj.", s.mlp, h);
  }
  l.norm(p + "ln_final.", h);
  l.add(p + "text_projection", {h, h});
  l.add(p + "logit_scale", {}, GenInit::LogitScale);
}

}  // namespace

CheckpointSpec checkpoint_spec(const std::string& arch, const std::string& size) {
  if (arch != "sd15" && arch != "sd2" && arch != "sd2-v") {
    throw ComfyError("ValueError", "unknown arch '" + arch + "' (expected sd15, sd2 or sd2-v)");
  }
  if (size != "tiny" && size != "full") {
    throw ComfyError("ValueError", "unknown size '" + size + "' (expected tiny or full)");
  }
  CheckpointSpec s;
  s.arch = arch;
  s.size = size;
  const bool sd2 = arch != "sd15";
  s.v_prediction = arch == "sd2-v";
  s.unet.use_linear = sd2;
  s.clip.open_clip = sd2;
  if (size == "full") {
    // SD1.5: CLIP-L (768, 12 layers); SD2.x: OpenCLIP ViT-H text tower (1024, 24 layers).
    s.unet.context_dim = sd2 ? 1024 : 768;
    s.clip.hidden = sd2 ? 1024 : 768;
    s.clip.layers = sd2 ? 24 : 12;
    s.clip.mlp = 4 * s.clip.hidden;
  } else {
    // The same structure (4 levels, 2 res blocks, attention on the first 3, so that
    // output_blocks.11.1 exists for the v-prediction heuristic) with small widths. SD2 widths stay
    // multiples of its 64 channels per head.
    s.unet.model_channels = sd2 ? 64 : 32;
    s.unet.channel_mult = sd2 ? std::vector<int64_t>{1, 1, 2, 2} : std::vector<int64_t>{1, 2, 2, 2};
    s.unet.context_dim = 64;
    s.vae.ch = 32;
    s.vae.ch_mult = {1, 2, 2, 2};
    s.vae.num_res_blocks = 1;
    s.clip.hidden = 64;
    // SD2 encodes with the penultimate layer, and ComfyUI asserts |layer_idx| < layers: 3 layers.
    s.clip.layers = sd2 ? 3 : 2;
    s.clip.mlp = 256;
  }
  return s;
}

std::vector<GenTensor> unet_layout(const GenUNetSpec& spec, const std::string& prefix, bool v_prediction) {
  Layout l;
  unet(l, spec, prefix, v_prediction);
  return l.tensors;
}

std::vector<GenTensor> checkpoint_layout(const CheckpointSpec& spec) {
  Layout l;
  unet(l, spec.unet, "model.diffusion_model.", spec.v_prediction);
  vae(l, spec.vae, "first_stage_model.");
  if (spec.clip.open_clip) {
    open_clip(l, spec.clip, "cond_stage_model.model.");
  } else {
    clip_l(l, spec.clip, "cond_stage_model.transformer.text_model.");
  }
  return l.tensors;
}

std::vector<std::pair<std::string, at::Tensor>> generate_tensors(const std::vector<GenTensor>& layout,
                                                                 at::ScalarType dtype, uint64_t seed) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  std::vector<std::pair<std::string, at::Tensor>> out;
  out.reserve(layout.size());
  for (const GenTensor& t : layout) {
    at::Tensor v;
    switch (t.init) {
      case GenInit::Normal:
        v = at::randn(t.shape, gen, f32).mul_(0.02);
        break;
      case GenInit::Ones: v = at::ones(t.shape, f32); break;
      case GenInit::Zeros: v = at::zeros(t.shape, f32); break;
      case GenInit::PositionIds:
        out.emplace_back(t.name, at::arange(t.shape.back(), at::kLong).reshape(t.shape));
        continue;
      case GenInit::LogitScale: v = at::full(t.shape, std::log(1.0 / 0.07), f32); break;
      case GenInit::VBias:
        // +0.2, -0.2, ...: population std exactly 0.2 (for an even width), well above 0.09.
        v = at::arange(t.shape.at(0), f32).remainder(2).mul(-0.4).add(0.2).reshape(t.shape);
        break;
    }
    out.emplace_back(t.name, v.to(dtype).contiguous());
  }
  return out;
}

void make_checkpoint(const std::string& arch, const std::string& size, at::ScalarType dtype, uint64_t seed,
                     const std::filesystem::path& path) {
  const CheckpointSpec spec = checkpoint_spec(arch, size);
  auto tensors = generate_tensors(checkpoint_layout(spec), dtype, seed);
  json meta = json::object();
  meta["comfycpp.arch"] = arch;
  meta["comfycpp.prediction"] = spec.v_prediction ? "v" : "eps";
  meta["comfycpp.size"] = size;
  meta["comfycpp.seed"] = std::to_string(seed);
  meta["comfycpp.generator"] = "comfycpp dev make-checkpoint";
  save_safetensors(path, tensors, meta);
}

}  // namespace comfy
