#!/usr/bin/env python3
"""Record the weights the real ComfyUI 0.8.0 computes for LoRA files on tiny_sd15, for
tests/models/lora_test.cpp.

For each case (a chain of LoraLoader / LoraLoaderModelOnly calls, as nodes.py runs them) it loads
tiny_sd15 with comfy.sd.load_checkpoint_guess_config (the oracle's oracle_tiny_sd extension lets it
accept the tiny sizes), applies the LoRAs with nodes.LoraLoader, loads (and so patches) the models
as sampling and CLIPTextEncode do (load_models_gpu), and saves the patched weights of the keys it
selects, in the dtype ComfyUI keeps them in (UNet f32, CLIP f16 on the CPU), plus the
"lora key not loaded" / "NOT LOADED" warnings.

Outputs in OUT_DIR: cases.json (per case: the LoRA chain, the recorded keys in our names
(model.diffusion_model.* / clip_l.transformer.*), the warnings) and <case>.safetensors.

Usage:
  PYTHONPATH=$(COMFYUI_DIR=/tmp/oracle-lora shared/oracle/start.sh --print-pythonpath):/tmp/oracle-lora \
      /usr/bin/python3 tools/oracle/record_loras.py MODELS_DIR LORAS_DIR OUT_DIR
  (MODELS_DIR holds checkpoints/tiny_sd15.safetensors and loras/tiny_lora.safetensors; LORAS_DIR
  the files of make_tiny_loras.py.)
"""
import importlib.util
import json
import logging
import os
import sys

import comfy.options

comfy.options.enable_args_parsing(False)
import comfy.cli_args  # noqa: E402

comfy.cli_args.args.cpu = True
import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

import comfy.model_management  # noqa: E402
import comfy.sd  # noqa: E402
import comfy.utils  # noqa: E402
import folder_paths  # noqa: E402

MAX_KEYS = 4  # per model and per CLIP in the tiny_lora cases (82 modules), spread over the sorted keys

# case id -> [(node, lora file, strength_model, strength_clip)]
CASES = {
    "kohya_0.8_0.5": [("LoraLoader", "tiny_lora.safetensors", 0.8, 0.5)],
    "kohya_negative": [("LoraLoader", "tiny_lora.safetensors", -1.3, -0.4)],
    "kohya_model_only": [("LoraLoaderModelOnly", "tiny_lora.safetensors", 1.0, 0.0)],
    "kohya_clip_only": [("LoraLoader", "tiny_lora.safetensors", 0.0, 0.7)],
    "diffusers": [("LoraLoader", "lora_diffusers.safetensors", 0.7, 0.6)],
    "peft": [("LoraLoader", "lora_peft.safetensors", 1.0, 1.0)],
    "loha": [("LoraLoader", "lora_loha.safetensors", 0.9, 1.1)],
    "lokr": [("LoraLoader", "lora_lokr.safetensors", 1.0, 0.5)],
    "locon_mid": [("LoraLoader", "lora_locon_mid.safetensors", 1.5, 1.0)],
    "diff": [("LoraLoader", "lora_diff.safetensors", 0.5, 0.8)],
    "dora_1.0": [("LoraLoader", "lora_dora.safetensors", 1.0, 1.0)],
    "dora_0.6": [("LoraLoader", "lora_dora.safetensors", 0.6, -0.3)],
    "glora": [("LoraLoader", "lora_glora.safetensors", 0.8, 0.8)],
    "sdxl_on_sd1": [("LoraLoader", "lora_sdxl_keys.safetensors", 1.0, 1.0)],
    "stacked": [("LoraLoader", "tiny_lora.safetensors", 0.8, 0.5),
                ("LoraLoader", "lora_loha.safetensors", 0.9, 1.1),
                ("LoraLoaderModelOnly", "lora_dora.safetensors", 0.6, 0.0)],
}


class Warnings(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def load_extension():
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "..", "..", "..", "shared", "oracle", "custom_nodes", "oracle_tiny_sd", "__init__.py")
    path = os.environ.get("ORACLE_TINY_SD", path)
    spec = importlib.util.spec_from_file_location("oracle_tiny_sd", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)


def pick(keys, chain):
    keys = sorted(keys)
    if len(keys) <= MAX_KEYS or not any(f == "tiny_lora.safetensors" for _, f, _, _ in chain):
        return keys
    step = len(keys) / MAX_KEYS
    return [keys[int(i * step)] for i in range(MAX_KEYS)]


def main():
    models_dir, loras_dir, out_dir = sys.argv[1:4]
    os.makedirs(out_dir, exist_ok=True)
    load_extension()
    import nodes
    folder_paths.add_model_folder_path("loras", os.path.join(models_dir, "loras"))
    folder_paths.add_model_folder_path("loras", loras_dir)
    ckpt = os.path.join(models_dir, "checkpoints", "tiny_sd15.safetensors")
    handler = Warnings()
    logging.getLogger().addHandler(handler)
    manifest = {}
    for case, chain in CASES.items():
        model, clip, _vae, _ = comfy.sd.load_checkpoint_guess_config(ckpt, output_vae=False, output_clip=True)
        handler.messages = []
        for node, name, sm, sc in chain:
            if node == "LoraLoader":
                model, clip = nodes.LoraLoader().load_lora(model, clip, name, sm, sc)
            else:
                (model,) = nodes.LoraLoaderModelOnly().load_lora_model_only(model, name, sm)
        warnings = [m for m in handler.messages if "lora key not loaded" in m or "NOT LOADED" in m]
        # what sampling and CLIPTextEncode do before they run: load (and so patch) the models
        comfy.model_management.load_models_gpu([model], force_full_load=True)
        clip.load_model()
        unet_sd = model.model.state_dict()
        clip_sd = clip.cond_stage_model.state_dict()
        tensors = {}
        for k in pick(model.patches.keys(), chain):
            assert k.startswith("diffusion_model.")
            tensors["model." + k] = unet_sd[k].detach().clone().contiguous()
        for k in pick(clip.patcher.patches.keys(), chain):
            tensors[k] = clip_sd[k].detach().clone().contiguous()
        comfy.model_management.unload_all_models()
        save_file(tensors, os.path.join(out_dir, case + ".safetensors"))
        manifest[case] = {
            "loras": [{"node": n, "lora_name": f, "strength_model": a, "strength_clip": b} for n, f, a, b in chain],
            "keys": sorted(tensors.keys()),
            "dtypes": {k: str(v.dtype).replace("torch.", "") for k, v in sorted(tensors.items())},
            "model_patched": len(model.patches),
            "clip_patched": len(clip.patcher.patches),
            "warnings": warnings,
        }
        print(case, len(tensors), "weights,", len(warnings), "warnings")
    with open(os.path.join(out_dir, "cases.json"), "w") as f:
        json.dump(manifest, f, indent=1)


if __name__ == "__main__":
    main()
