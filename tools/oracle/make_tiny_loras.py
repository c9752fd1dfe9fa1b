#!/usr/bin/env python3
"""Write tiny LoRA-family files for tiny_sd15's layout, one per format, for tests/fixtures/loras.

Every file patches a handful of weights of tests/fixtures/models/checkpoints/tiny_sd15.safetensors
(shapes are read from it) with values from a seeded torch.Generator, so the files are the same on
every run. Formats: diffusers names (processor.to_q_lora.*, .lora.up, lora_linear_layer), PEFT
(lora_A/lora_B) with generic diffusion_model./text_encoders./unet. names and lycoris_, LoHa (with a
CP conv), LoKr (w1 / w1_a,w1_b / w2 / w2_a,w2_b), LoCon with lora_mid, full diffs (.diff, .diff_b,
.w_norm, .b_norm, .set_weight and one diff of the wrong shape), DoRA (output and input axis), GLoRA,
and SDXL-only key names (nothing matches on SD1).

Usage (Debian's python3 with torch; the oracle's shims/ gives the safetensors stand-in):
  PYTHONPATH=../shared/oracle/shims /usr/bin/python3 tools/oracle/make_tiny_loras.py \
      tests/fixtures/models/checkpoints/tiny_sd15.safetensors tests/fixtures/loras
"""
import os
import sys

import torch
from safetensors import safe_open
from safetensors.torch import save_file

RANK = 4


class Maker:
    def __init__(self, ckpt, seed):
        self.f = safe_open(ckpt, "pt")
        self.g = torch.Generator().manual_seed(seed)

    def shape(self, key):
        return list(self.f.get_slice("model.diffusion_model." + key if not key.startswith("cond_") else key).get_shape())

    def clip_shape(self, key):
        return list(self.f.get_slice("cond_stage_model.transformer.text_model." + key).get_shape())

    def weight(self, key):
        return self.f.get_tensor("model.diffusion_model." + key).float()

    def clip_weight(self, key):
        return self.f.get_tensor("cond_stage_model.transformer.text_model." + key).float()

    def rand(self, *shape, scale=0.1):
        return (torch.randn(*shape, generator=self.g) * scale)

    def lora_pair(self, out, x, shape, up_name, down_name, dtype=torch.float16, rank=RANK, alpha=None):
        """up [o, r(,1,1)], down [r, i(,kh,kw)] for a weight of `shape`."""
        if len(shape) == 4:
            up = self.rand(shape[0], rank, 1, 1)
            down = self.rand(rank, shape[1], shape[2], shape[3])
        else:
            up = self.rand(shape[0], rank)
            down = self.rand(rank, shape[1])
        out[x + up_name] = up.to(dtype)
        out[x + down_name] = down.to(dtype)
        if alpha is not None:
            out[x + ".alpha"] = torch.tensor(float(alpha), dtype=dtype)


def diffusers(m):
    o = {}
    m.lora_pair(o, "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor.to_q",
                m.shape("input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight"), "_lora.up.weight", "_lora.down.weight",
                alpha=2)
    m.lora_pair(o, "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor.to_out",
                m.shape("input_blocks.1.1.transformer_blocks.0.attn1.to_out.0.weight"), "_lora.up.weight", "_lora.down.weight")
    m.lora_pair(o, "down_blocks.1.attentions.0.proj_in", m.shape("input_blocks.3.1.proj_in.weight"),
                ".lora.up.weight", ".lora.down.weight")
    m.lora_pair(o, "text_encoder.text_model.encoder.layers.0.self_attn.q_proj", m.clip_shape("encoder.layers.0.self_attn.q_proj.weight"),
                ".lora_linear_layer.up.weight", ".lora_linear_layer.down.weight")
    return o


def peft(m):
    o = {}
    f32 = torch.float32
    m.lora_pair(o, "diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k",
                m.shape("input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"), ".lora_B.weight", ".lora_A.weight",
                dtype=f32, alpha=8)
    m.lora_pair(o, "unet.down_blocks.0.attentions.0.proj_out", m.shape("input_blocks.1.1.proj_out.weight"),
                ".lora_B.weight", ".lora_A.weight", dtype=f32)
    m.lora_pair(o, "text_encoders.clip_l.transformer.text_model.encoder.layers.1.mlp.fc2",
                m.clip_shape("encoder.layers.1.mlp.fc2.weight"), ".lora_B.weight", ".lora_A.weight", dtype=f32)
    m.lora_pair(o, "lycoris_down_blocks_0_attentions_0_transformer_blocks_0_ff_net_2",
                m.shape("input_blocks.1.1.transformer_blocks.0.ff.net.2.weight"), ".lora_up.weight", ".lora_down.weight",
                dtype=f32, alpha=1)
    m.lora_pair(o, "lora_te1_text_model_encoder_layers_1_self_attn_v_proj",
                m.clip_shape("encoder.layers.1.self_attn.v_proj.weight"), ".lora_up.weight", ".lora_down.weight", dtype=f32)
    # plain diffusers attention names without ".processor": ComfyUI 0.8 has no mapping for these
    m.lora_pair(o, "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_v",
                m.shape("input_blocks.1.1.transformer_blocks.0.attn1.to_v.weight"), ".lora_B.weight", ".lora_A.weight",
                dtype=f32)
    return o


def loha(m):
    o = {}
    x = "lora_unet_input_blocks_1_1_transformer_blocks_0_attn1_to_k"
    s = m.shape("input_blocks.1.1.transformer_blocks.0.attn1.to_k.weight")
    o[x + ".hada_w1_a"] = m.rand(s[0], RANK, scale=0.3).half()
    o[x + ".hada_w1_b"] = m.rand(RANK, s[1], scale=0.3).half()
    o[x + ".hada_w2_a"] = m.rand(s[0], RANK, scale=0.3).half()
    o[x + ".hada_w2_b"] = m.rand(RANK, s[1], scale=0.3).half()
    o[x + ".alpha"] = torch.tensor(2.0).half()
    x = "lora_unet_down_blocks_0_resnets_0_conv1"  # CP: t [r, r, kh, kw], w_a [r, out], w_b [r, in]
    s = m.shape("input_blocks.1.0.in_layers.2.weight")
    for i in ("1", "2"):
        o[x + ".hada_w" + i + "_a"] = m.rand(RANK, s[0], scale=0.3).half()
        o[x + ".hada_w" + i + "_b"] = m.rand(RANK, s[1], scale=0.3).half()
        o[x + ".hada_t" + i] = m.rand(RANK, RANK, s[2], s[3], scale=0.3).half()
    o[x + ".alpha"] = torch.tensor(1.0).half()
    x = "lora_te_text_model_encoder_layers_1_mlp_fc1"
    s = m.clip_shape("encoder.layers.1.mlp.fc1.weight")
    o[x + ".hada_w1_a"] = m.rand(s[0], RANK, scale=0.3).half()
    o[x + ".hada_w1_b"] = m.rand(RANK, s[1], scale=0.3).half()
    o[x + ".hada_w2_a"] = m.rand(s[0], RANK, scale=0.3).half()
    o[x + ".hada_w2_b"] = m.rand(RANK, s[1], scale=0.3).half()
    return o


def lokr(m):
    o = {}
    x = "lora_unet_input_blocks_1_1_transformer_blocks_0_ff_net_0_proj"  # [256, 32] = kron([16,4], [16,8])
    o[x + ".lokr_w1"] = m.rand(16, 4, scale=0.3).half()
    o[x + ".lokr_w2_a"] = m.rand(16, RANK, scale=0.3).half()
    o[x + ".lokr_w2_b"] = m.rand(RANK, 8, scale=0.3).half()
    o[x + ".alpha"] = torch.tensor(2.0).half()
    x = "lora_unet_mid_block_resnets_0_conv1"  # [64, 64, 3, 3] = kron([8,4,1,1], [8,16,3,3])
    o[x + ".lokr_w1_a"] = m.rand(8, 2, scale=0.3).half()
    o[x + ".lokr_w1_b"] = m.rand(2, 4, scale=0.3).half()
    o[x + ".lokr_w2"] = m.rand(8, 16, 3, 3, scale=0.1).half()
    o[x + ".alpha"] = torch.tensor(1.0).half()
    # No lokr_t2 (CP) module: on the oracle's torch 1.13 ComfyUI's LoKr fails on it ("view size is not
    # compatible ...", logged, weight left unpatched), so it cannot give a reference.
    x = "lora_te_text_model_encoder_layers_0_self_attn_out_proj"  # [128, 128] = kron([8,8], [16,16])
    o[x + ".lokr_w1"] = m.rand(8, 8, scale=0.3).half()
    o[x + ".lokr_w2"] = m.rand(16, 16, scale=0.1).half()
    return o


def locon_mid(m):
    o = {}
    x = "lora_unet_down_blocks_0_resnets_0_conv2"
    s = m.shape("input_blocks.1.0.out_layers.3.weight")
    o[x + ".lora_up.weight"] = m.rand(s[0], RANK, 1, 1).half()
    o[x + ".lora_mid.weight"] = m.rand(RANK, RANK, s[2], s[3]).half()
    o[x + ".lora_down.weight"] = m.rand(RANK, s[1], 1, 1).half()
    o[x + ".alpha"] = torch.tensor(1.0).half()
    x = "lora_unet_output_blocks_3_0_in_layers_2"  # native kohya name, 3x3 down
    m.lora_pair(o, x, m.shape("output_blocks.3.0.in_layers.2.weight"), ".lora_up.weight", ".lora_down.weight", alpha=2)
    return o


def diffs(m):
    o = {}
    x = "diffusion_model.input_blocks.1.1.proj_in"
    o[x + ".diff"] = m.rand(*m.shape("input_blocks.1.1.proj_in.weight"), scale=0.05).half()
    o[x + ".diff_b"] = m.rand(*m.shape("input_blocks.1.1.proj_in.bias"), scale=0.05).half()
    x = "diffusion_model.input_blocks.1.1.norm"
    o[x + ".w_norm"] = m.rand(*m.shape("input_blocks.1.1.norm.weight"), scale=0.05).half()
    o[x + ".b_norm"] = m.rand(*m.shape("input_blocks.1.1.norm.bias"), scale=0.05).half()
    x = "diffusion_model.input_blocks.1.1.transformer_blocks.0.norm1"
    o[x + ".set_weight"] = m.rand(*m.shape("input_blocks.1.1.transformer_blocks.0.norm1.weight"), scale=0.5).half()
    x = "diffusion_model.input_blocks.1.1.proj_out"  # [32, 32] for a [32, 32, 1, 1] weight: shape mismatch
    s = m.shape("input_blocks.1.1.proj_out.weight")
    o[x + ".diff"] = m.rand(s[0], s[1], scale=0.05).half()
    x = "text_encoders.clip_l.transformer.text_model.encoder.layers.0.mlp.fc1"
    o[x + ".diff"] = m.rand(*m.clip_shape("encoder.layers.0.mlp.fc1.weight"), scale=0.05).half()
    o[x + ".diff_b"] = m.rand(*m.clip_shape("encoder.layers.0.mlp.fc1.bias"), scale=0.05).half()
    return o


def dora(m):
    o = {}

    def with_scale(x, w, on_output):
        m.lora_pair(o, x, list(w.shape), ".lora_up.weight", ".lora_down.weight", alpha=2)
        if on_output:
            norm = w.reshape(w.shape[0], -1).norm(dim=1).reshape(w.shape[0], *[1] * (w.dim() - 1))
        else:
            norm = w.transpose(0, 1).reshape(w.shape[1], -1).norm(dim=1).reshape(1, w.shape[1], *[1] * (w.dim() - 2))
        o[x + ".dora_scale"] = (norm * (1 + m.rand(*norm.shape, scale=0.2))).half()

    with_scale("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_q",
               m.weight("input_blocks.1.1.transformer_blocks.0.attn2.to_q.weight"), True)
    with_scale("lora_unet_down_blocks_0_attentions_0_proj_in", m.weight("input_blocks.1.1.proj_in.weight"), True)
    with_scale("lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_v",
               m.weight("input_blocks.3.1.transformer_blocks.0.attn2.to_v.weight"), False)
    with_scale("lora_te_text_model_encoder_layers_1_self_attn_k_proj", m.clip_weight("encoder.layers.1.self_attn.k_proj.weight"),
               True)
    return o


def glora(m):
    o = {}
    x = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_v"  # [32, 32]
    s = m.shape("input_blocks.1.1.transformer_blocks.0.attn1.to_v.weight")
    o[x + ".a1.weight"] = m.rand(s[1], RANK).half()
    o[x + ".a2.weight"] = m.rand(RANK, s[1]).half()
    o[x + ".b1.weight"] = m.rand(s[0], RANK).half()
    o[x + ".b2.weight"] = m.rand(RANK, s[1]).half()
    o[x + ".alpha"] = torch.tensor(2.0).half()
    return o


def sdxl_keys(m):
    """SDXL key names: nothing in them names an SD1 weight."""
    o = {}
    m.lora_pair(o, "lora_unet_input_blocks_4_1_transformer_blocks_1_attn1_to_q", [640, 640], ".lora_up.weight",
                ".lora_down.weight", alpha=4)
    m.lora_pair(o, "lora_te2_text_model_encoder_layers_0_mlp_fc1", [5120, 1280], ".lora_up.weight", ".lora_down.weight",
                rank=1, alpha=1)
    return o


FILES = [
    ("lora_diffusers.safetensors", diffusers),
    ("lora_peft.safetensors", peft),
    ("lora_loha.safetensors", loha),
    ("lora_lokr.safetensors", lokr),
    ("lora_locon_mid.safetensors", locon_mid),
    ("lora_diff.safetensors", diffs),
    ("lora_dora.safetensors", dora),
    ("lora_glora.safetensors", glora),
    ("lora_sdxl_keys.safetensors", sdxl_keys),
]


def main():
    ckpt, out_dir = sys.argv[1], sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    for i, (name, fn) in enumerate(FILES):
        tensors = fn(Maker(ckpt, 1000 + i))
        save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(out_dir, name),
                  metadata={"made_by": "tools/oracle/make_tiny_loras.py"})
        print(name, len(tensors), "tensors")


if __name__ == "__main__":
    main()
