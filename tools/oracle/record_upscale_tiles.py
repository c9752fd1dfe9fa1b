#!/usr/bin/env python3
"""Record ComfyUI's ImageUpscaleWithModel on inputs wider than its 512-pixel tile, for
tests/nn/upscale_model_test.cpp (the reference set's upscale cases all fit in one tile).

Runs the real nodes (UpscaleModelLoader + ImageUpscaleWithModel of comfy_extras, spandrel 0.4.2)
in-process on two tiny models of the reference set and writes tests/fixtures/upscale/tiled.safetensors:
for each case the input IMAGE `<case>.input` and the output IMAGE `<case>.output` (f32 [B,H,W,C]).
  - compact_x4: tiny_compact_x4, input 1x8x530 (tiles at x = 0 and 480, the second 50 wide)
  - esrgan_x2_unshuffle: tiny_esrgan_x2_new_unshuffle, input 2x20x602 (the second tile is 122
    wide, so spandrel pads it to a multiple of 4 and crops)
The inputs are closed-form patterns; the models are the fixtures' (models/upscale_models).

Usage (with the oracle's PYTHONPATH: ComfyUI 0.8.0 tree, spandrel, shims):
  PYTHONPATH=$(COMFYUI_DIR=... SPANDREL_GIT=... shared/oracle/start.sh --print-pythonpath):<ComfyUI tree> \
      python3 tools/oracle/record_upscale_tiles.py MODELS_DIR OUT.safetensors
"""
import sys

import comfy.options

comfy.options.enable_args_parsing(False)
import comfy.cli_args  # noqa: E402

comfy.cli_args.args.cpu = True
import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

import folder_paths  # noqa: E402
from comfy_extras.nodes_upscale_model import ImageUpscaleWithModel, UpscaleModelLoader  # noqa: E402


def pattern(b, h, w):
    y = torch.arange(h, dtype=torch.float64).view(1, h, 1, 1)
    x = torch.arange(w, dtype=torch.float64).view(1, 1, w, 1)
    c = torch.arange(3, dtype=torch.float64).view(1, 1, 1, 3)
    n = torch.arange(b, dtype=torch.float64).view(b, 1, 1, 1)
    v = 0.5 + 0.45 * torch.sin(0.37 * x + 0.23 * y + 1.7 * c + 0.9 * n) * torch.cos(0.051 * x - 0.13 * y * (c + 1))
    return v.to(torch.float32).contiguous()


def main():
    models_dir, out = sys.argv[1], sys.argv[2]
    folder_paths.add_model_folder_path("upscale_models", models_dir, True)
    cases = {
        "compact_x4": ("tiny_compact_x4.safetensors", (1, 8, 530)),
        "esrgan_x2_unshuffle": ("tiny_esrgan_x2_new_unshuffle.safetensors", (2, 20, 602)),
    }
    tensors = {}
    for name, (model_name, shape) in cases.items():
        model = UpscaleModelLoader.execute(model_name).result[0]
        image = pattern(*shape)
        result = ImageUpscaleWithModel.execute(model, image).result[0]
        tensors[name + ".input"] = image
        tensors[name + ".output"] = result.to(torch.float32).contiguous()
        print(name, tuple(image.shape), "->", tuple(result.shape), float(result.min()), float(result.max()))
    save_file(tensors, out, metadata={"comfyui": "0.8.0", "recorded_by": "tools/oracle/record_upscale_tiles.py"})


if __name__ == "__main__":
    main()
