#!/usr/bin/env python3
"""Record ComfyUI's final latents for the ControlNet cases of tests/fixtures/controlnet/.

Needs an oracle (shared/oracle/start.sh) that sees the tiny checkpoint (its own
extra_model_paths.yaml), the tiny ControlNets (models/controlnet = tests/fixtures/controlnet/models)
and the hint images (--input-directory tests/fixtures/controlnet/input), e.g.
  cat > /tmp/cn_paths.yaml <<Y
  cn:
      base_path: <repo>/tests/fixtures/controlnet
      controlnet: models
  Y
  COMFYUI_GIT=... PORT=8194 shared/oracle/start.sh --extra-model-paths-config /tmp/cn_paths.yaml \
      --input-directory <repo>/tests/fixtures/controlnet/input --output-directory /tmp/cn_out &
  python3 tools/oracle/record_controlnet.py http://127.0.0.1:8194 /tmp/cn_out tests/fixtures/controlnet
The stock ComfyUI loads the tiny ControlNet once the oracle's oracle_tiny_sd extension is loaded
(load_controlnet detects the config with model_config_from_unet, which then matches TinySD15).
Writes <case>.json (the API prompt) and <case>.latent (SaveLatent's file) per case.
"""
import json
import shutil
import sys
import time
import urllib.request


def base_nodes(steps, cfg, seed, sampler="euler"):
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "tiny_sd15.safetensors"}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a house by a lake", "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["1", 1]}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "10": {"class_type": "ControlNetLoader", "inputs": {"control_net_name": "tiny_controlnet.safetensors"}},
        "20": {"class_type": "KSampler", "inputs": {
            "model": ["1", 0], "seed": seed, "steps": steps, "cfg": cfg, "sampler_name": sampler,
            "scheduler": "normal", "positive": None, "negative": None, "latent_image": ["4", 0], "denoise": 1.0}},
        "30": {"class_type": "SaveLatent", "inputs": {"samples": ["20", 0], "filename_prefix": None}},
    }


def case_advanced():
    # ControlNetApplyAdvanced on positive and negative (one shared ControlNet: batched together),
    # a 32x32 hint upscaled to the 64x64 image with nearest-exact.
    p = base_nodes(2, 6.0, 42)
    p["11"] = {"class_type": "LoadImage", "inputs": {"image": "scene_32x32.png"}}
    p["12"] = {"class_type": "ControlNetApplyAdvanced", "inputs": {
        "positive": ["2", 0], "negative": ["3", 0], "control_net": ["10", 0], "image": ["11", 0],
        "strength": 0.8, "start_percent": 0.0, "end_percent": 1.0}}
    p["20"]["inputs"].update(positive=["12", 0], negative=["12", 1])
    return p


def case_chain():
    # The deprecated ControlNetApply (applied to the uncond too), then a second ControlNet chained
    # with ControlNetApplyAdvanced over part of the schedule only (start 0.3, end 0.8), 3 steps.
    p = base_nodes(3, 5.0, 7)
    p["11"] = {"class_type": "LoadImage", "inputs": {"image": "scene_64x64.png"}}
    p["13"] = {"class_type": "LoadImage", "inputs": {"image": "scene_32x32.png"}}
    p["12"] = {"class_type": "ControlNetApply", "inputs": {
        "conditioning": ["2", 0], "control_net": ["10", 0], "image": ["11", 0], "strength": 1.3}}
    p["14"] = {"class_type": "ControlNetApplyAdvanced", "inputs": {
        "positive": ["12", 0], "negative": ["3", 0], "control_net": ["10", 0], "image": ["13", 0],
        "strength": 0.6, "start_percent": 0.3, "end_percent": 0.8}}
    p["20"]["inputs"].update(positive=["14", 0], negative=["14", 1])
    return p


def case_uncond_only():
    # ControlNetApply alone: the positive's ControlNet is copied onto the negative (control_apply_to_uncond).
    p = base_nodes(2, 4.0, 3)
    p["11"] = {"class_type": "LoadImage", "inputs": {"image": "scene_64x64.png"}}
    p["12"] = {"class_type": "ControlNetApply", "inputs": {
        "conditioning": ["2", 0], "control_net": ["10", 0], "image": ["11", 0], "strength": 1.0}}
    p["20"]["inputs"].update(positive=["12", 0], negative=["3", 0])
    return p


def case_diff():
    # DiffControlNetLoader: the diff ControlNet's weights plus the model's UNet weights.
    p = case_advanced()
    p["10"] = {"class_type": "DiffControlNetLoader", "inputs": {
        "model": ["1", 0], "control_net_name": "tiny_controlnet_diff.safetensors"}}
    return p


CASES = {"cn_advanced": case_advanced, "cn_chain_range": case_chain, "cn_apply_uncond": case_uncond_only,
         "cn_diff": case_diff}


def post(base, path, body):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(req).read())


def get(base, path):
    return json.loads(urllib.request.urlopen(base + path).read())


def main():
    base, out_dir, fixtures = sys.argv[1], sys.argv[2], sys.argv[3]
    for name, make in CASES.items():
        prompt = make()
        prompt["30"]["inputs"]["filename_prefix"] = "cn/" + name
        pid = post(base, "/prompt", {"prompt": prompt})["prompt_id"]
        for _ in range(600):
            h = get(base, "/history/" + pid)
            if pid in h:
                break
            time.sleep(0.2)
        h = h[pid]
        if h["status"]["status_str"] != "success":
            raise SystemExit("%s failed: %s" % (name, json.dumps(h["status"])))
        lat = h["outputs"]["30"]["latents"][0]
        src = "%s/%s/%s" % (out_dir, lat["subfolder"], lat["filename"])
        shutil.copy(src, "%s/%s.latent" % (fixtures, name))
        with open("%s/%s.json" % (fixtures, name), "w") as f:
            json.dump(prompt, f, indent=1, sort_keys=True)
        print("recorded", name)


if __name__ == "__main__":
    main()
