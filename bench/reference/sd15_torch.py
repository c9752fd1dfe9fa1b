#!/usr/bin/python3
"""The PyTorch baseline of `make bench`: SD1.5's UNet, VAE decoder and CLIP-L text encoder in
PyTorch eager fp32, written out below as plain torch.nn.functional calls so that a reader sees
exactly what is timed (the same layers, in the same order, as ComfyUI's
ldm/modules/diffusionmodules/openaimodel.py UNetModel, ldm/modules/diffusionmodules/model.py
Decoder and clip_model.py CLIPTextModel_; attention is bmm-softmax-bmm, what PyTorch 1.13 eager
does without a fused kernel). The weights are the benchmark checkpoint's own state dict, read
without the safetensors package and cast to fp32 once, before any timing.

    /usr/bin/python3 bench/reference/sd15_torch.py --checkpoint FILE --io DIR
        [--stages unet512,unet256,clip,vae,load,memory] [--repeat N] [--label best|installed]

DIR/inputs/*.npy are made here when missing (seeded): the harness hands the same files to
`comfycpp dev bench`. Outputs go to DIR/torch-LABEL/<stage>.npy and the timings, as JSON, to
stdout's last line. Thread count and kernel choice come from the environment the harness sets
(OMP_NUM_THREADS, ATEN_CPU_CAPABILITY, OPENBLAS_CORETYPE); "installed" leaves them alone.
"""
import argparse
import json
import math
import os
import struct
import sys
import threading
import time

import numpy as np
import torch
import torch.nn.functional as F

# ---------------------------------------------------------------------------------------------
# safetensors without the package: 8-byte little-endian header length, JSON header, raw data.
DTYPES = {"F16": torch.float16, "F32": torch.float32, "BF16": torch.bfloat16, "I64": torch.int64}


def load_safetensors_fp32(path, prefixes):
    """Every tensor whose name starts with one of `prefixes`, as an fp32 (int64 stays) tensor."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        base = 8 + n
        out = {}
        for name, info in header.items():
            if name == "__metadata__" or not name.startswith(prefixes):
                continue
            begin, end = info["data_offsets"]
            f.seek(base + begin)
            raw = bytearray(f.read(end - begin))
            t = torch.frombuffer(raw, dtype=DTYPES[info["dtype"]]).reshape(info["shape"])
            out[name] = t if t.dtype == torch.int64 else t.float()
    return out


class View:
    """The weights under one key prefix: v["in_layers.0.weight"], v.sub("in_layers.")."""

    def __init__(self, sd, prefix=""):
        self.sd, self.prefix = sd, prefix

    def __getitem__(self, k):
        return self.sd[self.prefix + k]

    def has(self, k):
        return (self.prefix + k) in self.sd

    def sub(self, p):
        return View(self.sd, self.prefix + p)


def conv(v, x, stride=1):
    w = v["weight"]
    return F.conv2d(x, w, v["bias"], stride=stride, padding=w.shape[-1] // 2)


def linear(v, x):
    return F.linear(x, v["weight"], v["bias"] if v.has("bias") else None)


def group_norm(v, x, eps):
    return F.group_norm(x, 32, v["weight"], v["bias"], eps)


def layer_norm(v, x):
    return F.layer_norm(x, (x.shape[-1],), v["weight"], v["bias"], 1e-5)


def attention(q, k, v, heads, mask=None):
    """[B, N, C] x3 -> [B, N, C]: softmax(q k^T / sqrt(d) + mask) v per head, with bmm."""
    b, n, c = q.shape
    d = c // heads
    q, k, v = (t.reshape(b, -1, heads, d).transpose(1, 2).reshape(b * heads, -1, d) for t in (q, k, v))
    s = torch.baddbmm(torch.empty(1, 1, 1), q, k.transpose(1, 2), beta=0, alpha=d ** -0.5)
    if mask is not None:
        s = s + mask
    o = torch.bmm(s.softmax(-1), v)
    return o.reshape(b, heads, n, d).transpose(1, 2).reshape(b, n, c)


# ---------------------------------------------------------------------------------------------
# The UNet (openaimodel.UNetModel, SD1.5 config read from the keys).
def timestep_embedding(t, dim, max_period=10000):
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
    args = t[:, None].float() * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def res_block(v, x, emb):
    h = conv(v.sub("in_layers.2."), F.silu(group_norm(v.sub("in_layers.0."), x, 1e-5)))
    h = h + linear(v.sub("emb_layers.1."), F.silu(emb))[:, :, None, None]
    h = conv(v.sub("out_layers.3."), F.silu(group_norm(v.sub("out_layers.0."), h, 1e-5)))
    skip = conv(v.sub("skip_connection."), x) if v.has("skip_connection.weight") else x
    return skip + h


def spatial_transformer(v, x, context, heads):
    b, c, hh, ww = x.shape
    x_in = x
    x = conv(v.sub("proj_in."), group_norm(v.sub("norm."), x, 1e-6))
    x = x.permute(0, 2, 3, 1).reshape(b, hh * ww, c)
    t = v.sub("transformer_blocks.0.")
    n = layer_norm(t.sub("norm1."), x)
    a = t.sub("attn1.")
    x = x + linear(a.sub("to_out.0."), attention(linear(a.sub("to_q."), n), linear(a.sub("to_k."), n),
                                                  linear(a.sub("to_v."), n), heads))
    n = layer_norm(t.sub("norm2."), x)
    a = t.sub("attn2.")
    x = x + linear(a.sub("to_out.0."), attention(linear(a.sub("to_q."), n), linear(a.sub("to_k."), context),
                                                  linear(a.sub("to_v."), context), heads))
    n = layer_norm(t.sub("norm3."), x)
    h, gate = linear(t.sub("ff.net.0.proj."), n).chunk(2, dim=-1)
    x = x + linear(t.sub("ff.net.2."), h * F.gelu(gate))
    x = x.reshape(b, hh, ww, c).permute(0, 3, 1, 2)
    return conv(v.sub("proj_out."), x) + x_in


def unet_block(v, x, emb, context, heads):
    """One entry of input_blocks / middle_block / output_blocks: its layers in key order."""
    i = 0
    while v.has(f"{i}.weight") or any(v.has(f"{i}.{k}") for k in ("in_layers.0.weight", "op.weight",
                                                                    "proj_in.weight", "conv.weight")):
        s = v.sub(f"{i}.")
        if s.has("in_layers.0.weight"):
            x = res_block(s, x, emb)
        elif s.has("proj_in.weight"):
            x = spatial_transformer(s, x, context, heads)
        elif s.has("op.weight"):
            x = conv(s.sub("op."), x, stride=2)
        elif s.has("conv.weight"):
            x = conv(s.sub("conv."), F.interpolate(x, scale_factor=2.0, mode="nearest"))
        else:
            x = conv(s, x)
        i += 1
    return x


def count_blocks(sd, prefix):
    return len({k[len(prefix):].split(".")[0] for k in sd if k.startswith(prefix)})


def unet_forward(sd, x, timesteps, context, heads=8):
    v = View(sd, "model.diffusion_model.")
    emb = timestep_embedding(timesteps, v["time_embed.0.weight"].shape[1])
    emb = linear(v.sub("time_embed.2."), F.silu(linear(v.sub("time_embed.0."), emb)))
    hs = []
    h = x
    for i in range(count_blocks(sd, "model.diffusion_model.input_blocks.")):
        h = unet_block(v.sub(f"input_blocks.{i}."), h, emb, context, heads)
        hs.append(h)
    h = unet_block(v.sub("middle_block."), h, emb, context, heads)
    for i in range(count_blocks(sd, "model.diffusion_model.output_blocks.")):
        h = unet_block(v.sub(f"output_blocks.{i}."), torch.cat([h, hs.pop()], dim=1), emb, context, heads)
    return conv(v.sub("out.2."), F.silu(group_norm(v.sub("out.0."), h, 1e-5)))


# ---------------------------------------------------------------------------------------------
# The VAE decoder (post_quant_conv + model.Decoder), output unclamped.
def vae_res_block(v, x):
    h = conv(v.sub("conv1."), F.silu(group_norm(v.sub("norm1."), x, 1e-6)))
    h = conv(v.sub("conv2."), F.silu(group_norm(v.sub("norm2."), h, 1e-6)))
    skip = conv(v.sub("nin_shortcut."), x) if v.has("nin_shortcut.weight") else x
    return skip + h


def vae_attn_block(v, x):
    b, c, hh, ww = x.shape
    n = group_norm(v.sub("norm."), x, 1e-6)
    q, k, val = (conv(v.sub(p), n).reshape(b, c, hh * ww).transpose(1, 2) for p in ("q.", "k.", "v."))
    o = attention(q, k, val, 1).transpose(1, 2).reshape(b, c, hh, ww)
    return x + conv(v.sub("proj_out."), o)


def vae_decode(sd, z):
    v = View(sd, "first_stage_model.")
    d = v.sub("decoder.")
    h = conv(d.sub("conv_in."), conv(v.sub("post_quant_conv."), z))
    h = vae_res_block(d.sub("mid.block_1."), h)
    h = vae_attn_block(d.sub("mid.attn_1."), h)
    h = vae_res_block(d.sub("mid.block_2."), h)
    levels = count_blocks(sd, "first_stage_model.decoder.up.")
    for lvl in reversed(range(levels)):
        up = d.sub(f"up.{lvl}.")
        for j in range(count_blocks(sd, f"first_stage_model.decoder.up.{lvl}.block.")):
            h = vae_res_block(up.sub(f"block.{j}."), h)
        if up.has("upsample.conv.weight"):
            h = conv(up.sub("upsample.conv."), F.interpolate(h, scale_factor=2.0, mode="nearest"))
    return conv(d.sub("conv_out."), F.silu(group_norm(d.sub("norm_out."), h, 1e-6)))


# ---------------------------------------------------------------------------------------------
# CLIP-L (clip_model.CLIPTextModel_ as SD1's CLIPTextEncode runs it: causal mask, quick-gelu,
# last layer through final_layer_norm).
def clip_encode(sd, tokens):
    v = View(sd, "cond_stage_model.transformer.text_model.")
    x = F.embedding(tokens, v["embeddings.token_embedding.weight"])
    x = x + v["embeddings.position_embedding.weight"][: tokens.shape[1]]
    n = tokens.shape[1]
    mask = torch.full((n, n), float("-inf")).triu_(1)
    layers = count_blocks(sd, "cond_stage_model.transformer.text_model.encoder.layers.")
    heads = x.shape[-1] // 64
    for i in range(layers):
        l = v.sub(f"encoder.layers.{i}.")
        h = layer_norm(l.sub("layer_norm1."), x)
        a = l.sub("self_attn.")
        x = x + linear(a.sub("out_proj."), attention(linear(a.sub("q_proj."), h), linear(a.sub("k_proj."), h),
                                                      linear(a.sub("v_proj."), h), heads, mask))
        h = linear(l.sub("mlp.fc1."), layer_norm(l.sub("layer_norm2."), x))
        x = x + linear(l.sub("mlp.fc2."), h * torch.sigmoid(1.702 * h))
    return layer_norm(v.sub("final_layer_norm."), x)


# ---------------------------------------------------------------------------------------------
# Inputs (seeded, written once and shared with comfycpp) and the timing loop.
def make_inputs(d):
    os.makedirs(d, exist_ok=True)
    g = torch.Generator().manual_seed(1234)
    want = {
        "unet512_x": lambda: torch.randn(2, 4, 64, 64, generator=g),
        "unet256_x": lambda: torch.randn(2, 4, 32, 32, generator=g),
        "timesteps": lambda: torch.tensor([500.0, 500.0]),
        "context": lambda: torch.randn(2, 77, 768, generator=g),
        # BOS, a fixed 12-token prompt, EOS, padded with EOS to 77 (SD1's tokenizer layout).
        "tokens": lambda: torch.tensor([[49406, 320, 1125, 539, 550, 18376, 6765, 320, 4558, 530, 518, 2390, 2447, 49407]
                                         + [49407] * 63], dtype=torch.int64),
        "vae_z": lambda: torch.randn(1, 4, 64, 64, generator=g) / 0.18215,
    }
    for name, make in want.items():  # each made in this order, so the seed gives the same values
        t = make()
        path = os.path.join(d, name + ".npy")
        if not os.path.exists(path):
            np.save(path, t.numpy())


def read_input(d, name):
    return torch.from_numpy(np.load(os.path.join(d, name + ".npy")))


def rss_status():
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            k, _, rest = line.partition(":")
            if k in ("VmHWM", "RssAnon", "RssFile", "RssShmem"):
                out[k] = int(rest.split()[0]) / 1024.0  # MB
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--io", required=True)
    p.add_argument("--stages", default="unet512,unet256,clip,vae")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--label", default="best")
    p.add_argument("--make-inputs-only", action="store_true")
    a = p.parse_args()
    inputs = os.path.join(a.io, "inputs")
    make_inputs(inputs)
    if a.make_inputs_only:
        return
    out_dir = os.path.join(a.io, "torch-" + a.label)
    os.makedirs(out_dir, exist_ok=True)
    stages = [s for s in a.stages.split(",") if s]
    torch.set_grad_enabled(False)
    result = {"label": a.label, "threads": torch.get_num_threads(), "torch": torch.__version__,
              "config": torch.__config__.parallel_info().splitlines()[:3],
              "env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "ATEN_CPU_CAPABILITY", "OPENBLAS_CORETYPE", "OMP_WAIT_POLICY")},
              "stages": {}}
    t0 = time.perf_counter()
    prefixes = tuple(p for s, p in (("unet", "model.diffusion_model."), ("clip", "cond_stage_model."),
                                    ("vae", "first_stage_model."), ("load", ""), ("memory", ""))
                     if any(x.startswith(s) for x in stages))
    sd = load_safetensors_fp32(a.checkpoint, prefixes)
    load_s = time.perf_counter() - t0
    if "load" in stages:
        result["stages"]["load"] = {"seconds": load_s, "what": "read the file and cast every tensor to fp32"}

    def timed(name, fn):
        best, best_cpu, out = float("inf"), 0.0, None
        for r in range(a.repeat):
            s, c = time.perf_counter(), time.process_time()
            out = fn()
            e, cpu = time.perf_counter() - s, time.process_time() - c
            if e < best:
                best, best_cpu = e, cpu
            print(f"  torch-{a.label} {name} run {r + 1}: {e:.3f} s ({cpu:.3f} s cpu)", file=sys.stderr, flush=True)
        np.save(os.path.join(out_dir, name + ".npy"), out.numpy())
        result["stages"][name] = {"seconds": best, "cpu_seconds": best_cpu}

    ts, ctx = read_input(inputs, "timesteps"), read_input(inputs, "context")
    if "unet512" in stages:
        timed("unet512", lambda: unet_forward(sd, read_input(inputs, "unet512_x"), ts, ctx))
    if "unet256" in stages:
        timed("unet256", lambda: unet_forward(sd, read_input(inputs, "unet256_x"), ts, ctx))
    if "clip" in stages:
        timed("clip", lambda: clip_encode(sd, read_input(inputs, "tokens")))
    if "vae" in stages:
        timed("vae", lambda: vae_decode(sd, read_input(inputs, "vae_z")))
    if "memory" in stages:
        # One 512x512 text-to-image pass of the pipeline (2 text encodes, 1 CFG UNet call, the
        # VAE decode) with the fp32 state dict resident: RSS sampled every 20 ms, maxima kept.
        peaks = rss_status()
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                for k, v in rss_status().items():
                    peaks[k] = max(peaks.get(k, 0.0), v)
                time.sleep(0.02)

        th = threading.Thread(target=sample, daemon=True)
        th.start()
        tok = read_input(inputs, "tokens")
        c = torch.cat([clip_encode(sd, tok), clip_encode(sd, tok)])
        eps = unet_forward(sd, read_input(inputs, "unet512_x"), ts, c)
        vae_decode(sd, eps[:1] / 0.18215)
        stop.set()
        th.join()
        for k, v in rss_status().items():
            peaks[k] = max(peaks.get(k, 0.0), v)
        result["stages"]["memory"] = {"peak_rss_mb": peaks.get("VmHWM"), "rss_anon_mb": peaks.get("RssAnon"),
                                      "rss_file_mb": peaks.get("RssFile"), "rss_shmem_mb": peaks.get("RssShmem")}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
