#!/usr/bin/env python3
"""Record ComfyUI's own sampler outputs on an analytic fake model, for tests/sampling.

Runs the real comfy.samplers.KSAMPLER.sample (noise scaling, inpaint mask, the k-diffusion /
UniPC functions, default and Brownian-tree noise) with a fake guided model whose prediction is a
closed-form function of (x, sigma), and writes tests/fixtures/sampling/samplers.json. Also
records numpy SeedSequence states and torchsde BrownianTree increments.

Usage (with the oracle's PYTHONPATH: ComfyUI 0.8.0 tree, torchsde, trampoline, shims):
  PYTHONPATH=$(COMFYUI_DIR=... TORCHSDE_GIT=... TRAMPOLINE_GIT=... \
      shared/oracle/start.sh --print-pythonpath):<ComfyUI tree> \
      python3 tools/oracle/record_samplers.py OUT.json
"""
import json
import sys

import comfy.options

comfy.options.enable_args_parsing(False)
import comfy.cli_args  # noqa: E402

comfy.cli_args.args.cpu = True
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchsde  # noqa: E402

import comfy.model_sampling as ms_mod  # noqa: E402
import comfy.sample  # noqa: E402
import comfy.samplers as cs  # noqa: E402

SEED = 123
SHAPE = [2, 4, 4, 4]


class Sampling(ms_mod.ModelSamplingDiscrete, ms_mod.EPS):
    pass


class Obj:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def fake_predictions(x, sigma, target):
    """cond and uncond 'denoised' predictions; the C++ test writes the same formulas."""
    s = sigma.view([sigma.shape[0]] + [1] * (x.ndim - 1))
    cond = target + (x - target) * (0.1 / (1 + s))
    uncond = target * 0.5 + x * (0.05 / (1 + s))
    return cond, uncond


class FakeGuider:
    """Stands where CFGGuider stands for KSAMPLER.sample (model_wrap)."""

    def __init__(self, sampling, target):
        self.target = target
        base = Obj(model_sampling=sampling)
        base.scale_latent_inpaint = lambda sigma, noise, latent_image, **kw: sampling.noise_scaling(
            sigma.reshape([sigma.shape[0]] + [1] * (len(noise.shape) - 1)), noise, latent_image)
        self.inner_model = base
        self.model_patcher = Obj(get_model_object=lambda name: sampling)

    def __call__(self, x, sigma, model_options={}, seed=None):
        cond, uncond = fake_predictions(x, sigma, self.target)
        for fn in model_options.get("sampler_post_cfg_function", []):
            cond = fn({"denoised": cond, "uncond_denoised": uncond, "cond_denoised": cond, "model": None,
                       "uncond": None, "cond": None, "input": x, "sigma": sigma, "cond_scale": 1.0,
                       "model_options": model_options})
        return cond


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def run_sampler(name, sampling, sigmas, noise, latent, mask, target):
    sampler = cs.sampler_object(name)
    guider = FakeGuider(sampling, target)
    extra_args = {"model_options": {}, "seed": SEED}
    out = sampler.sample(guider, sigmas.clone(), extra_args, None, noise.clone(), latent.clone(), mask, True)
    return out


def main():
    out_path = sys.argv[1]
    sampling = Sampling()
    steps = 6
    target = torch.randn(SHAPE, generator=torch.manual_seed(7))
    latent = torch.randn(SHAPE, generator=torch.manual_seed(8)) * 0.5
    noise = comfy.sample.prepare_noise(torch.zeros(SHAPE), SEED)
    mask = torch.zeros([SHAPE[0], 1, SHAPE[2], SHAPE[3]])
    mask[:, :, 1:3, :] = 1.0

    result = {"seed": SEED, "shape": SHAPE, "steps": steps, "scheduler": "karras",
              "target": flat(target), "latent": flat(latent), "noise": flat(noise), "mask": flat(mask),
              "formula": "cond = target + (x - target) * (0.1 / (1 + s)); uncond = target * 0.5 + x * (0.05 / (1 + s))",
              "samplers": {}, "masked": {}}
    for name in cs.KSampler.SAMPLERS:
        n = steps + 1 if name in cs.KSampler.DISCARD_PENULTIMATE_SIGMA_SAMPLERS else steps
        sigmas = cs.calculate_sigmas(sampling, "karras", n)
        if name in cs.KSampler.DISCARD_PENULTIMATE_SIGMA_SAMPLERS:
            sigmas = torch.cat([sigmas[:-2], sigmas[-1:]])
        # txt2img-like: empty latent, full denoise.
        res = run_sampler(name, sampling, sigmas, noise, torch.zeros(SHAPE), None, target)
        result["samplers"][name] = {"sigmas": flat(sigmas), "out": flat(res)}
        # img2img with an inpainting mask from the middle of the schedule.
        sig2 = sigmas[2:]
        res2 = run_sampler(name, sampling, sig2, noise, latent, mask, target)
        result["masked"][name] = {"sigmas": flat(sig2), "out": flat(res2)}

    # numpy SeedSequence states.
    seqs = []
    for entropy, spawn_key, pool_size, n in [(0, (), 24, 3), (123, (), 24, 3), (2 ** 64 - 1, (), 24, 4),
                                              (42, (1, 1), 24, 4), (42, (5, 3), 24, 4), (2 ** 40 + 3, (77, 7), 4, 6)]:
        state = np.random.SeedSequence(entropy=entropy, spawn_key=spawn_key, pool_size=pool_size).generate_state(n)
        seqs.append({"entropy": str(entropy), "spawn_key": list(spawn_key), "pool_size": pool_size,
                     "state": [int(v) for v in state]})
    result["seed_sequence"] = seqs

    # torchsde BrownianTree increments (as BatchedBrownianTree builds them: f32 CPU, w0 zeros).
    t0, t1 = torch.tensor(0.0291675, dtype=torch.float32), torch.tensor(14.614642, dtype=torch.float32)
    tree = torchsde.BrownianTree(t0, torch.zeros([2, 3]), t1, entropy=SEED)
    queries = [(1.0, 2.0), (0.5, 7.25), (0.0291675, 14.614642), (3.3, 3.31), (10.0, 14.614642)]
    result["brownian"] = {"t0": float(t0), "t1": float(t1), "size": [2, 3], "entropy": SEED,
                          "queries": [{"ta": float(torch.tensor(a)), "tb": float(torch.tensor(b)),
                                       "w": flat(tree(torch.tensor(a), torch.tensor(b)))} for a, b in queries]}
    with open(out_path, "w") as fh:
        json.dump(result, fh)


if __name__ == "__main__":
    main()
