#!/usr/bin/env python3
"""Record the real ComfyUI's SD2.x outputs on tiny random checkpoints, for tests/models/sd2_parity_test.

Stock ComfyUI pins SD2's sizes (SD20: model_channels 320, context_dim 1024, the full OpenCLIP-H
text model); ../shared/oracle's oracle_tiny_sd extension lifts that for SD1 layouts only. This
script (our own code, no node classes) does the same for SD2 layouts in-process: TinySD20 is
supported_models.SD20 without the size pins, and its OpenCLIP-H text model config is read from
the weight shapes (heads = width / 64). Everything that computes stays ComfyUI's.

The checkpoints come from comfy.cpp's own generator (deterministic):
  build/comfycpp dev make-checkpoint --arch sd2   --size tiny --dtype f16 --seed 2024 -o tiny_sd2.safetensors
  build/comfycpp dev make-checkpoint --arch sd2-v --size tiny --dtype f16 --seed 2024 -o tiny_sd2-v.safetensors

Usage:
  PYTHONPATH=<oracle shims>:<ComfyUI 0.8.0 tree>:<oracle custom_nodes> \
      python3 tools/oracle/record_sd2.py CKPT_DIR OUT_DIR
Writes OUT_DIR/<case>/{workflow_api.json, final.latent.safetensors, final_image.safetensors}
and OUT_DIR/cases.json (what each case is, the checkpoint's sha256, the model type ComfyUI chose).
"""
import hashlib
import json
import os
import re
import sys

import comfy.options

comfy.options.enable_args_parsing(False)
import comfy.cli_args  # noqa: E402

comfy.cli_args.args.cpu = True
import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

import comfy.sd  # noqa: E402
import comfy.sd1_clip  # noqa: E402
import comfy.supported_models  # noqa: E402
import comfy.supported_models_base  # noqa: E402
import comfy.text_encoders.sd2_clip as sd2_clip  # noqa: E402
import nodes  # noqa: E402
import oracle_tiny_sd  # noqa: E402,F401  (tiny KL VAE configs from shapes)


def _count(keys, pattern):
    rx = re.compile(pattern)
    idx = {int(m.group(1)) for k in keys for m in [rx.match(k)] if m}
    return (max(idx) + 1) if idx else 0


def open_clip_config(sd):
    """The transformers-style config of an OpenCLIP text tower stored as cond_stage_model.model.*"""
    p = "cond_stage_model.model."
    if p + "token_embedding.weight" not in sd:
        return None
    tok = sd[p + "token_embedding.weight"]
    hidden = tok.shape[1]
    return {
        "architectures": ["CLIPTextModel"], "hidden_act": "gelu", "hidden_size": hidden,
        "intermediate_size": sd[p + "transformer.resblocks.0.mlp.c_fc.weight"].shape[0],
        "num_hidden_layers": _count(list(sd.keys()), re.escape(p) + r"transformer\.resblocks\.(\d+)\."),
        "num_attention_heads": max(1, hidden // 64), "max_position_embeddings": sd[p + "positional_embedding"].shape[0],
        "vocab_size": tok.shape[0], "projection_dim": sd[p + "text_projection"].shape[1], "layer_norm_eps": 1e-05,
        "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1, "model_type": "clip_text_model",
        "torch_dtype": "float32", "initializer_factor": 1.0, "initializer_range": 0.02,
        "attention_dropout": 0.0, "dropout": 0.0,
    }


class TinySD20(comfy.supported_models.SD20):
    unet_config = {"use_linear_in_transformer": True, "adm_in_channels": None, "use_temporal_attention": False}
    clip_config = None

    @classmethod
    def matches(cls, unet_config, state_dict=None):
        if not super().matches(unet_config, state_dict):
            return False
        return (unet_config.get("model_channels"), unet_config.get("context_dim")) != (320, 1024)

    def clip_target(self, state_dict={}):
        cfg = TinySD20.clip_config

        class TinySD2ClipModel(sd2_clip.SD2ClipModel):
            def __init__(self, device="cpu", dtype=None, model_options={}, **kwargs):
                model_options = {**model_options, "clip_h_model_config": dict(cfg)}
                super().__init__(device=device, dtype=dtype, model_options=model_options, **kwargs)

        return comfy.supported_models_base.ClipTarget(sd2_clip.SD2Tokenizer, TinySD2ClipModel)


comfy.supported_models.models.append(TinySD20)

CASES = [
    {"id": "sd2_t2i_euler_normal", "ckpt": "tiny_sd2.safetensors", "sampler": "euler", "scheduler": "normal",
     "steps": 4, "cfg": 7.0, "seed": 42, "width": 64, "height": 64, "text": "a photo of a cat", "negative": "blurry"},
    {"id": "sd2v_t2i_dpmpp_2m_karras", "ckpt": "tiny_sd2-v.safetensors", "sampler": "dpmpp_2m",
     "scheduler": "karras", "steps": 4, "cfg": 6.0, "seed": 7, "width": 64, "height": 48,
     "text": "a (red:1.2) house by the sea", "negative": ""},
    {"id": "sd2v_t2i_euler_ancestral_clipskip", "ckpt": "tiny_sd2-v.safetensors", "sampler": "euler_ancestral",
     "scheduler": "normal", "steps": 3, "cfg": 5.0, "seed": 123, "width": 64, "height": 64,
     "text": "mountains at dawn", "negative": "text", "clip_skip": -2},
]


def workflow(c):
    clip_src = ["4", 1]
    wf = {"4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": c["ckpt"]}}}
    if "clip_skip" in c:
        wf["10"] = {"class_type": "CLIPSetLastLayer", "inputs": {"stop_at_clip_layer": c["clip_skip"], "clip": ["4", 1]}}
        clip_src = ["10", 0]
    wf.update({
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": c["text"], "clip": clip_src}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": c["negative"], "clip": clip_src}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": c["width"], "height": c["height"], "batch_size": 1}},
        "3": {"class_type": "KSampler", "inputs": {"seed": c["seed"], "steps": c["steps"], "cfg": c["cfg"],
              "sampler_name": c["sampler"], "scheduler": c["scheduler"], "denoise": 1.0, "model": ["4", 0],
              "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
    })
    return wf


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main(ckpt_dir, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    summary = []
    for c in CASES:
        path = os.path.join(ckpt_dir, c["ckpt"])
        sd = comfy.utils.load_torch_file(path)
        TinySD20.clip_config = open_clip_config(sd)
        model, clip, vae, _ = comfy.sd.load_checkpoint_guess_config(
            path, output_vae=True, output_clip=True, embedding_directory=None)
        model_type = type(model.model.model_sampling).__name__ + "/" + str(model.model.model_type)
        if "clip_skip" in c:
            clip = clip.clone()
            clip.clip_layer(c["clip_skip"])
        pos = nodes.CLIPTextEncode().encode(clip, c["text"])[0]
        neg = nodes.CLIPTextEncode().encode(clip, c["negative"])[0]
        latent = nodes.EmptyLatentImage().generate(c["width"], c["height"], 1)[0]
        out = nodes.common_ksampler(model, c["seed"], c["steps"], c["cfg"], c["sampler"], c["scheduler"],
                                    pos, neg, latent, denoise=1.0)[0]
        image = vae.decode(out["samples"])
        d = os.path.join(out_dir, c["id"])
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "workflow_api.json"), "w") as f:
            json.dump(workflow(c), f, indent=1)
        save_file({"latent_tensor": out["samples"].contiguous()}, os.path.join(d, "final.latent.safetensors"))
        save_file({"image": image.float().contiguous()}, os.path.join(d, "final_image.safetensors"))
        summary.append({**c, "ckpt_sha256": sha256(path), "comfyui_model": model_type,
                        "latent_max_abs": float(out["samples"].abs().max())})
        print(c["id"], model_type, "max|latent|", summary[-1]["latent_max_abs"], flush=True)
    with open(os.path.join(out_dir, "cases.json"), "w") as f:
        json.dump({"comfyui_version": "0.8.0", "produced_with": "tools/oracle/record_sd2.py", "cases": summary},
                  f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
