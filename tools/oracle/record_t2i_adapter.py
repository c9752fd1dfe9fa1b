#!/usr/bin/env python3
"""Record ComfyUI's T2I adapter features for tests/nn/controlnet_test.cpp (in-process, no server).

Loads tests/fixtures/controlnet/models/tiny_t2i_full.safetensors with comfy.controlnet.load_controlnet
and runs T2IAdapter.get_control on a 16x16 latent (hint: scene_64x64.png upscaled to 128x128 with
nearest-exact, averaged to 1 channel), strength 0.7. Writes tests/fixtures/controlnet/t2i_full_features.safetensors:
"input.<i>" for every defined entry of the control dict's input list (ComfyUI's order).

Usage: PYTHONPATH=$(COMFYUI_GIT=... COMFYUI_DIR=<tree> shared/oracle/start.sh --print-pythonpath):<tree> \
    /usr/bin/python3 tools/oracle/record_t2i_adapter.py <repo>
"""
import sys

import comfy.options

comfy.options.enable_args_parsing(False)
import comfy.cli_args  # noqa: E402

comfy.cli_args.args.cpu = True
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
import safetensors.torch  # noqa: E402

import comfy.controlnet  # noqa: E402


def main():
    repo = sys.argv[1]
    fx = repo + "/tests/fixtures/controlnet"
    img = np.asarray(Image.open(fx + "/input/scene_64x64.png").convert("RGB"), dtype=np.float32) / 255.0
    image = torch.from_numpy(img)[None]
    cn = comfy.controlnet.load_controlnet(fx + "/models/tiny_t2i_full.safetensors")
    c = cn.copy().set_cond_hint(image.movedim(-1, 1), 0.7, (0.0, 1.0))
    x = torch.zeros(1, 4, 16, 16)
    out = c.get_control(x, torch.tensor([1.0]), {}, 1, {})
    t = {}
    for i, v in enumerate(out["input"]):
        if v is not None:
            t["input.%d" % i] = v.contiguous().float()
    print({k: list(v.shape) for k, v in t.items()}, "input len", len(out["input"]), "middle", len(out["middle"]))
    safetensors.torch.save_file(t, fx + "/t2i_full_features.safetensors")


if __name__ == "__main__":
    main()
