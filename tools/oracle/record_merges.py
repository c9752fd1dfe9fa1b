#!/usr/bin/env python3
"""Record what the real ComfyUI 0.8.0 writes for merged and saved models, for tests/nodes/model_merging_test.

Queues workflows on a running oracle (shared/oracle/start.sh with ORACLE_OUT=DIR): the two tiny
checkpoints merged with ModelMergeBlocks, ModelMergeSD1, ModelMergeSubtract + ModelMergeAdd and the
three CLIP merges, each saved with CheckpointSave; and CLIPSave / VAESave / ModelSave of tiny_sd15.
The saved files are too big for fixtures, so each becomes a digest (OUT/<case>.safetensors and
OUT/cases.json):
  - per tensor: its dtype, shape and float64 sum (cases.json), and 32 samples of its values as
    float32 at flat indices (j * (numel - 1)) // 31, j = 0..31 (all values when numel <= 32);
  - the file's __metadata__ (cases.json), and its name relative to the output directory.

Usage (Debian's /usr/bin/python3, which has numpy; the oracle started with ORACLE_OUT=DIR, PORT=8193):
  /usr/bin/python3 tools/oracle/record_merges.py --base http://127.0.0.1:8193 --oracle-out DIR tests/fixtures/merging
"""
import argparse
import json
import os
import struct
import sys
import time
import urllib.request
import uuid

import numpy as np

EXTRA_PNGINFO = {"workflow": {"nodes": [], "note": "record_merges"}, "extra": [1, "two"]}

SD1_BLOCKS = ["time_embed.", "label_emb."] + ["input_blocks.%d." % i for i in range(12)] + \
    ["middle_block.%d." % i for i in range(3)] + ["output_blocks.%d." % i for i in range(12)] + ["out."]


def ckpt(name):
    return {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": name}}


def two_checkpoints():
    return {"1": ckpt("tiny_sd15.safetensors"), "2": ckpt("tiny_sd15_b.safetensors")}


def save_ckpt(model, clip, vae, prefix):
    return {"class_type": "CheckpointSave",
            "inputs": {"model": model, "clip": clip, "vae": vae, "filename_prefix": prefix}}


def cases():
    out = {}
    wf = two_checkpoints()
    wf["3"] = {"class_type": "ModelMergeBlocks",
               "inputs": {"model1": ["1", 0], "model2": ["2", 0], "input": 0.2, "middle": 0.5, "out": 0.9}}
    wf["4"] = {"class_type": "CLIPMergeSimple", "inputs": {"clip1": ["1", 1], "clip2": ["2", 1], "ratio": 0.3}}
    wf["5"] = save_ckpt(["3", 0], ["4", 0], ["1", 2], "merging/blocks")
    out["blocks_clipsimple"] = wf

    wf = two_checkpoints()
    ratios = {k: round(0.03 * i + 0.01, 2) for i, k in enumerate(SD1_BLOCKS)}
    wf["3"] = {"class_type": "ModelMergeSD1", "inputs": dict({"model1": ["1", 0], "model2": ["2", 0]}, **ratios)}
    wf["4"] = {"class_type": "CLIPMergeSubtract", "inputs": {"clip1": ["1", 1], "clip2": ["2", 1], "multiplier": 0.7}}
    wf["5"] = save_ckpt(["3", 0], ["4", 0], ["2", 2], "merging/sd1")
    out["sd1_clipsubtract"] = wf

    wf = two_checkpoints()
    wf["3"] = {"class_type": "ModelMergeSubtract", "inputs": {"model1": ["1", 0], "model2": ["2", 0], "multiplier": 1.5}}
    wf["4"] = {"class_type": "ModelMergeAdd", "inputs": {"model1": ["3", 0], "model2": ["2", 0]}}
    wf["5"] = {"class_type": "CLIPMergeAdd", "inputs": {"clip1": ["1", 1], "clip2": ["2", 1]}}
    wf["6"] = save_ckpt(["4", 0], ["5", 0], ["1", 2], "merging/subadd")
    out["subtract_add_clipadd"] = wf

    wf = {"1": ckpt("tiny_sd15.safetensors")}
    wf["2"] = {"class_type": "CLIPSave", "inputs": {"clip": ["1", 1], "filename_prefix": "clip/ComfyUI"}}
    wf["3"] = {"class_type": "VAESave", "inputs": {"vae": ["1", 2], "filename_prefix": "vae/ComfyUI_vae"}}
    wf["4"] = {"class_type": "ModelSave", "inputs": {"model": ["1", 0], "filename_prefix": "diffusion_models/ComfyUI"}}
    out["clip_vae_model_save"] = wf
    return out


def run(base, wf):
    body = json.dumps({"prompt": wf, "client_id": str(uuid.uuid4()),
                       "extra_data": {"extra_pnginfo": EXTRA_PNGINFO}}).encode()
    req = urllib.request.Request(base + "/prompt", data=body, headers={"Content-Type": "application/json"})
    pid = json.load(urllib.request.urlopen(req))["prompt_id"]
    while True:
        h = json.load(urllib.request.urlopen(base + "/history/" + pid))
        st = h.get(pid, {}).get("status", {})
        if st.get("completed"):
            return
        if st.get("status_str") == "error":
            raise RuntimeError(json.dumps(st, indent=1)[-3000:])
        time.sleep(0.05)


NP = {"F16": np.float16, "F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32,
      "BF16": None}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", None)
    tensors = {}
    for k, info in header.items():
        b, e = info["data_offsets"]
        raw = data[8 + n + b:8 + n + e]
        if info["dtype"] == "BF16":
            u = np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16
            arr = u.view(np.float32)
        else:
            arr = np.frombuffer(raw, dtype=NP[info["dtype"]])
        tensors[k] = (info["dtype"], info["shape"], arr)
    return meta, tensors


def samples(flat):
    n = flat.size
    if n <= 32:
        return flat.astype(np.float64)
    idx = [(j * (n - 1)) // 31 for j in range(32)]
    return flat[idx].astype(np.float64)


def write_safetensors(path, tensors):
    header = {}
    blobs = []
    off = 0
    for k in sorted(tensors):
        b = np.ascontiguousarray(tensors[k], dtype=np.float32).tobytes()
        header[k] = {"dtype": "F32", "shape": [len(tensors[k])], "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", default="http://127.0.0.1:8193")
    ap.add_argument("--oracle-out", required=True)
    ap.add_argument("out_dir")
    a = ap.parse_args()
    os.makedirs(a.out_dir, exist_ok=True)
    summary = {"extra_pnginfo": EXTRA_PNGINFO, "cases": {}}
    for name, wf in cases().items():
        before = set()
        for root, _, files in os.walk(a.oracle_out):
            before |= {os.path.join(root, f) for f in files}
        run(a.base, wf)
        after = set()
        for root, _, files in os.walk(a.oracle_out):
            after |= {os.path.join(root, f) for f in files}
        new_files = sorted(after - before)
        case = {"workflow": wf, "files": {}}
        digest = {}
        for p in new_files:
            rel = os.path.relpath(p, a.oracle_out)
            meta, tensors = read_safetensors(p)
            entry = {"metadata": meta, "tensors": {}}
            for k, (dt, shape, arr) in tensors.items():
                entry["tensors"][k] = {"dtype": dt, "shape": shape, "sum": float(arr.astype(np.float64).sum())}
                digest[rel + ":" + k] = samples(arr)
            case["files"][rel] = entry
        write_safetensors(os.path.join(a.out_dir, name + ".safetensors"), digest)
        summary["cases"][name] = case
        print(name, "->", ", ".join(os.path.relpath(p, a.oracle_out) for p in new_files))
    with open(os.path.join(a.out_dir, "cases.json"), "w") as f:
        json.dump(summary, f, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
