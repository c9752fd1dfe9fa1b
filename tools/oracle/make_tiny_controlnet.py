#!/usr/bin/env python3
"""Writes the tiny ControlNet and T2I adapters of tests/fixtures/controlnet/models/ for tiny_sd15.

Run with the oracle's Python (Debian python3 + python3-torch) and its PYTHONPATH (for the
safetensors shim):
  PYTHONPATH=$(../shared/oracle/start.sh --print-pythonpath) /usr/bin/python3 \
      tools/oracle/make_tiny_controlnet.py tests/fixtures/models/checkpoints/tiny_sd15.safetensors \
      tests/fixtures/controlnet/models

Files (random weights, seeded, deterministic):
  tiny_controlnet.safetensors    ldm layout ("control_model." prefix): the checkpoint UNet's
      time_embed / input_blocks / middle_block, perturbed, plus input_hint_block (8 convs,
      3 -> 16 -> 16 -> 32 -> 32 -> 96 -> 96 -> 256 -> model_channels, strides 1,1,2,1,2,1,2,1),
      one 1x1 zero conv per input block and middle_block_out. F16.
  tiny_controlnet_sdxl.safetensors  the same with an SDXL-style label_emb (adm 2816) and linear
      transformer projections: must be refused on an SD1 model.
  tiny_controlnet_diff.safetensors  tiny_controlnet as a diff ControlNet: every weight the UNet also
      has stored as (ControlNet - UNet) in F16, plus a "difference" marker (DiffControlNetLoader
      adds the model's weights back).
  tiny_controlnet_diffusers.safetensors  tiny_controlnet in the diffusers layout, renamed with
      ComfyUI's own comfy.utils.unet_to_diffusers for the checkpoint's UNet config (so the ComfyUI
      tree must be on PYTHONPATH; without it this file is skipped) plus the ControlNet names
      load_controlnet_state_dict converts (controlnet_down_blocks, controlnet_mid_block,
      controlnet_cond_embedding).
  tiny_t2i_full.safetensors      T2I Adapter (full; cin 64 = 1 image channel * 8 * 8, channels
      [16, 32, 64, 64] (ComfyUI derives [c, 2c, 4c, 4c] from conv_in), nums_rb 2, ksize 1, sk,
      conv downsample). F16. (ComfyUI's light adapter pins 320..1280 channels: too big for a
      fixture, so there is none.)
"""
import os
import sys

import torch
import safetensors.torch


def load(path):
    return safetensors.torch.load_file(path)


def rnd(gen, shape, scale):
    return torch.randn(shape, generator=gen, dtype=torch.float32) * scale


def conv(gen, sd, name, cout, cin, k, scale=None):
    fan = cin * k * k
    sd[name + ".weight"] = rnd(gen, (cout, cin, k, k), scale if scale is not None else fan ** -0.5)
    sd[name + ".bias"] = rnd(gen, (cout,), 0.05)


def controlnet(ckpt, seed, sdxl=False):
    gen = torch.Generator().manual_seed(seed)
    pre = "model.diffusion_model."
    sd = {}
    for k, v in sorted(ckpt.items()):
        if not k.startswith(pre):
            continue
        rest = k[len(pre):]
        if not (rest.startswith("time_embed.") or rest.startswith("input_blocks.") or rest.startswith("middle_block.")):
            continue
        v = v.float()
        # A trained ControlNet starts as a copy of the UNet; perturb it so that reading the UNet's
        # weights instead of the ControlNet's would show.
        sd["control_model." + rest] = v + rnd(gen, v.shape, 0.02)
    mc = sd["control_model.input_blocks.0.0.weight"].shape[0]
    # input_hint_block: convs at positions 0, 2, ..., 14 (SiLU in between).
    chans = [3, 16, 16, 32, 32, 96, 96, 256, mc]
    for i in range(8):
        conv(gen, sd, "control_model.input_hint_block.%d" % (i * 2), chans[i + 1], chans[i], 3)
    # zero convs: one per input block, 1x1, with the block's output width.
    n = 0
    while "control_model.input_blocks.%d.0.weight" % n in sd or any(
            k.startswith("control_model.input_blocks.%d." % n) for k in sd):
        blk = "control_model.input_blocks.%d." % n
        if blk + "0.weight" in sd:
            ch = sd[blk + "0.weight"].shape[0]
        elif blk + "0.op.weight" in sd:
            ch = sd[blk + "0.op.weight"].shape[0]
        else:
            ch = sd[blk + "0.out_layers.3.weight"].shape[0]
        conv(gen, sd, "control_model.zero_convs.%d.0" % n, ch, ch, 1, 0.3 / ch ** 0.5)
        n += 1
    ch = sd["control_model.middle_block.2.out_layers.3.weight"].shape[0]
    conv(gen, sd, "control_model.middle_block_out.0", ch, ch, 1, 0.3 / ch ** 0.5)
    if sdxl:
        ted = sd["control_model.time_embed.0.weight"].shape[0]
        sd["control_model.label_emb.0.0.weight"] = rnd(gen, (ted, 2816), 0.02)
        sd["control_model.label_emb.0.0.bias"] = rnd(gen, (ted,), 0.02)
        sd["control_model.label_emb.0.2.weight"] = rnd(gen, (ted, ted), 0.02)
        sd["control_model.label_emb.0.2.bias"] = rnd(gen, (ted,), 0.02)
        for k in list(sd):
            if (k.endswith("proj_in.weight") or k.endswith("proj_out.weight")) and sd[k].dim() == 4:
                sd[k] = sd[k][:, :, 0, 0].contiguous()
    return {k: v.half() for k, v in sd.items()}


def diff_controlnet(cn, ckpt):
    pre = "model.diffusion_model."
    out = {}
    for k, v in cn.items():
        unet_key = pre + k[len("control_model."):]
        out[k] = (v - ckpt[unet_key].to(v.dtype)) if unet_key in ckpt else v
    out["difference"] = torch.tensor([0.0])
    return out


def diffusers_controlnet(cn, ckpt_path):
    import json as _json
    import comfy.utils
    meta = _json.loads(safetensors.safe_open(ckpt_path, "pt").metadata()["oracle_tiny_config"])
    unet = dict(meta["unet"])
    to_ldm = comfy.utils.unet_to_diffusers(unet)  # diffusers name -> ldm name
    rename = {"control_model." + v: k for k, v in to_ldm.items()}
    out = {}
    for k, v in cn.items():
        rest = k[len("control_model."):]
        if k in rename:
            out[rename[k]] = v
        elif rest.startswith("zero_convs."):
            n = rest.split(".")[1]
            out["controlnet_down_blocks.%s.%s" % (n, rest.split(".")[-1])] = v
        elif rest.startswith("middle_block_out.0."):
            out["controlnet_mid_block." + rest.split(".")[-1]] = v
        elif rest.startswith("input_hint_block."):
            pos = int(rest.split(".")[1])
            name = "conv_in" if pos == 0 else ("conv_out" if pos == 14 else "blocks.%d" % (pos // 2 - 1))
            out["controlnet_cond_embedding.%s.%s" % (name, rest.split(".")[-1])] = v
        else:
            raise SystemExit("no diffusers name for " + k)
    return out


def t2i_full(seed, channels=(16, 32, 64, 64), cin=64, nums_rb=2, ksize=1):
    gen = torch.Generator().manual_seed(seed)
    sd = {}
    conv(gen, sd, "conv_in", channels[0], cin, 3)
    for i in range(len(channels)):
        for j in range(nums_rb):
            idx = i * nums_rb + j
            p = "body.%d." % idx
            cin_b = channels[i - 1] if (i in (1, 2, 3) and j == 0) else channels[i]
            down = i in (1, 2, 3) and j == 0
            if down:
                conv(gen, sd, p + "down_opt.op", cin_b, cin_b, 3)
            if cin_b != channels[i]:
                conv(gen, sd, p + "in_conv", channels[i], cin_b, ksize)
            conv(gen, sd, p + "block1", channels[i], channels[i], 3)
            conv(gen, sd, p + "block2", channels[i], channels[i], ksize)
    return {k: v.half() for k, v in sd.items()}


def save(sd, path):
    sd = {k: v.contiguous() for k, v in sd.items()}
    safetensors.torch.save_file(sd, path, metadata={"format": "pt"})
    print("wrote %s: %d tensors" % (path, len(sd)))


def main():
    ckpt, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    base = load(ckpt)
    cn = controlnet(base, 4321)
    save(cn, os.path.join(out, "tiny_controlnet.safetensors"))
    save(diff_controlnet(cn, base), os.path.join(out, "tiny_controlnet_diff.safetensors"))
    try:
        import comfy.utils  # noqa: F401
        save(diffusers_controlnet(cn, ckpt), os.path.join(out, "tiny_controlnet_diffusers.safetensors"))
    except ImportError:
        print("ComfyUI not on PYTHONPATH: tiny_controlnet_diffusers.safetensors not written")
    save(controlnet(base, 4322, sdxl=True), os.path.join(out, "tiny_controlnet_sdxl.safetensors"))
    save(t2i_full(4323), os.path.join(out, "tiny_t2i_full.safetensors"))


if __name__ == "__main__":
    main()
