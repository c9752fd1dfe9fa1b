#!/usr/bin/env python3
"""Record ComfyUI's T2I adapter networks run directly (in-process), for the adapters that
load_t2i_adapter builds at sizes too big for a fixture: Adapter_light (ComfyUI pins its channels to
320..1280; here channels [16, 32, 32, 32], cin 192, nums_rb 2) and the SDXL Adapter (xl: cin 256,
unshuffle 16; here channel 16, ksize 1, conv downsampling). Weights are random (seeded); each
network's state dict, its hint and its outputs go to tests/fixtures/controlnet/t2i_<name>.safetensors:
"w.<key>" weights, "hint", "input.<i>" / "middle.<i>" for the defined outputs.

Usage: PYTHONPATH=<oracle pythonpath>:<ComfyUI tree> /usr/bin/python3 tools/oracle/record_t2i_networks.py <repo>
"""
import sys

import comfy.options

comfy.options.enable_args_parsing(False)
import torch  # noqa: E402
import safetensors.torch  # noqa: E402

from comfy.t2i_adapter.adapter import Adapter, Adapter_light  # noqa: E402


def fill(module, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in sorted(module.state_dict().items()):
            p.copy_(torch.randn(p.shape, generator=g) * (0.05 if p.dim() == 1 else (p[0].numel() ** -0.5)))


def record(module, hint, path):
    with torch.no_grad():
        out = module(hint)
    t = {"w." + k: v.contiguous() for k, v in module.state_dict().items()}
    t["hint"] = hint
    for key in ("input", "middle"):
        for i, v in enumerate(out.get(key, [])):
            if v is not None:
                t["%s.%d" % (key, i)] = v.contiguous()
    safetensors.torch.save_file(t, path)
    print(path, {k: list(v.shape) for k, v in t.items() if not k.startswith("w.")},
          {k: len(v) for k, v in out.items()})


def main():
    fx = sys.argv[1] + "/tests/fixtures/controlnet"
    light = Adapter_light(channels=[16, 32, 32, 32], nums_rb=2, cin=192)
    fill(light, 11)
    g = torch.Generator().manual_seed(12)
    record(light, torch.rand(1, 3, 40, 56, generator=g), fx + "/t2i_light.safetensors")
    xl = Adapter(cin=256, channels=[16, 32, 64, 64], nums_rb=2, ksize=1, sk=True, use_conv=True, xl=True)
    fill(xl, 13)
    record(xl, torch.rand(1, 1, 64, 96, generator=g), fx + "/t2i_xl.safetensors")


if __name__ == "__main__":
    main()
