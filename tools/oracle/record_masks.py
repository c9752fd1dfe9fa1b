#!/usr/bin/env python3
"""Record the real ComfyUI's outputs of the mask, post-processing and compositing nodes.

Usage:
    record_masks.py [--url http://127.0.0.1:8191] [--oracle-output /tmp/oracle-masks/output]
                    [--out tests/fixtures/masks]

Needs a running reference oracle (../shared/oracle/README.md) with the PNGs of
../shared/fixtures/comfyui-ref/inputs in its input directory and the oracle_save_tensor extension
loaded, e.g.:

    mkdir -p /tmp/oracle-masks/input /tmp/oracle-masks/output
    cp ../shared/fixtures/comfyui-ref/inputs/*.png /tmp/oracle-masks/input/
    COMFYUI_GIT=... COMFYUI_DIR=/tmp/oracle-masks/comfy ORACLE_OUT=/tmp/oracle-masks/output \
      PORT=8191 ../shared/oracle/start.sh --input-directory /tmp/oracle-masks/input \
      --whitelist-custom-nodes oracle_tiny_sd oracle_save_tensor &

Every case is one prompt whose result goes through OracleSaveImageTensor (float32, unrounded;
a MASK first goes through MaskToImage and is stored back as [B,H,W]). Written files:
    inputs.safetensors           the input tensors the tests feed our nodes (decoded by the oracle)
    <family>.safetensors         one tensor per case: what ComfyUI's node returned
    cases.json                   per case: its family, the node, its widget values, which inputs
                                 it takes, the kind of output (mask, image, or shape: an IMAGE of
                                 which only the shape is kept), and for cases ComfyUI rejects,
                                 the exception type and message (for a mask, the error may come
                                 from the MaskToImage that follows the node)
Stdlib only (safetensors is read and written by hand: JSON header + raw little-endian f32).
"""
import argparse
import glob
import json
import os
import struct
import sys
import time
import urllib.error
import urllib.request


def node(class_type, **inputs):
    return {"class_type": class_type, "inputs": inputs}


# The inputs every case may use: name -> (node, output slot, kind). Node ids are the names.
INPUTS = {
    "scene32": (node("LoadImage", image="scene_32x32.png"), 0, "image"),
    "scene64": (node("LoadImage", image="scene_64x64.png"), 0, "image"),
    "hole_mask": (node("LoadImage", image="scene_64x64_alpha_hole.png"), 1, "mask"),
    "mask64": (node("LoadImageMask", image="mask_64x64.png", channel="red"), 0, "mask"),
    "crop64": (node("ImageCrop", image=["scene64", 0], width=32, height=32, x=16, y=16), 0, "image"),
    "grey32": (node("ImageToMask", image=["scene32", 0], channel="red"), 0, "mask"),
    "rgba32": (node("JoinImageWithAlpha", image=["scene32", 0], alpha=["grey32", 0]), 0, "image"),
    "solid8": (node("MaskToImage", mask=["solid8m", 0]), 0, "image"),
}
HELPERS = {"solid8m": node("SolidMask", value=0.5, width=8, height=8)}


# Cases: (family, name, class_type, widgets, linked inputs {input: input-name}, output kind:
# "mask", "image", or "shape" for an IMAGE of which only the shape is kept).
def cases():
    out = []

    def add(family, name, class_type, widgets, links, kind):
        out.append(dict(family=family, name=name, class_type=class_type, widgets=widgets,
                        links=links, kind=kind))

    m = "mask"
    add(m, "solid", "SolidMask", dict(value=0.37, width=20, height=12), {}, "mask")
    add(m, "invert", "InvertMask", {}, {"mask": "grey32"}, "mask")
    add(m, "crop", "CropMask", dict(x=10, y=5, width=30, height=100), {"mask": "mask64"}, "mask")
    add(m, "crop_outside", "CropMask", dict(x=70, y=0, width=8, height=8), {"mask": "mask64"}, "mask")
    for op in ["multiply", "add", "subtract", "and", "or", "xor"]:
        add(m, "composite_" + op, "MaskComposite", dict(x=40, y=20, operation=op),
            {"destination": "mask64", "source": "grey32"}, "mask")
    add(m, "composite_bigger_source", "MaskComposite", dict(x=0, y=3, operation="add"),
        {"destination": "grey32", "source": "mask64"}, "mask")
    add(m, "feather_solid", "FeatherMask", dict(left=5, top=3, right=6, bottom=4),
        {"mask": "solid8m"}, "mask")
    add(m, "feather_grey", "FeatherMask", dict(left=100, top=0, right=0, bottom=40),
        {"mask": "grey32"}, "mask")
    add(m, "grow_3_tapered", "GrowMask", dict(expand=3, tapered_corners=True), {"mask": "mask64"}, "mask")
    add(m, "grow_-2_square", "GrowMask", dict(expand=-2, tapered_corners=False), {"mask": "mask64"}, "mask")
    add(m, "grow_grey_2_square", "GrowMask", dict(expand=2, tapered_corners=False), {"mask": "grey32"}, "mask")
    add(m, "grow_grey_-1_tapered", "GrowMask", dict(expand=-1, tapered_corners=True), {"mask": "grey32"}, "mask")
    add(m, "grow_0", "GrowMask", dict(expand=0, tapered_corners=True), {"mask": "grey32"}, "mask")
    add(m, "threshold", "ThresholdMask", dict(value=0.4), {"mask": "grey32"}, "mask")
    add(m, "image_to_mask_green", "ImageToMask", dict(channel="green"), {"image": "scene32"}, "mask")
    add(m, "image_to_mask_alpha", "ImageToMask", dict(channel="alpha"), {"image": "rgba32"}, "mask")
    add(m, "image_to_mask_alpha_of_rgb", "ImageToMask", dict(channel="alpha"), {"image": "scene32"}, "mask")
    add(m, "color_to_mask", "ImageColorToMask", dict(color=0x5252AD), {"image": "scene32"}, "mask")
    add(m, "color_to_mask_blue", "ImageColorToMask", dict(color=0x0000FF), {"image": "scene32"}, "mask")
    add(m, "mask_to_image", "MaskToImage", {}, {"mask": "hole_mask"}, "image")
    add(m, "composite_masked_plain", "ImageCompositeMasked", dict(x=40, y=10, resize_source=False),
        {"destination": "scene64", "source": "scene32"}, "image")
    add(m, "composite_masked_mask", "ImageCompositeMasked", dict(x=8, y=20, resize_source=False),
        {"destination": "scene64", "source": "scene32", "mask": "grey32"}, "image")
    add(m, "composite_masked_resize", "ImageCompositeMasked", dict(x=0, y=0, resize_source=True),
        {"destination": "scene64", "source": "crop64", "mask": "mask64"}, "image")
    add(m, "composite_masked_rgba_source", "ImageCompositeMasked", dict(x=3, y=4, resize_source=False),
        {"destination": "crop64", "source": "rgba32"}, "image")
    add(m, "composite_masked_rgba_destination", "ImageCompositeMasked", dict(x=0, y=0, resize_source=False),
        {"destination": "rgba32", "source": "crop64"}, "image")

    p = "post_processing"
    for mode in ["normal", "multiply", "screen", "overlay", "soft_light", "difference"]:
        add(p, "blend_" + mode, "ImageBlend", dict(blend_factor=0.65, blend_mode=mode),
            {"image1": "scene32", "image2": "crop64"}, "image")
    add(p, "blend_resized", "ImageBlend", dict(blend_factor=0.5, blend_mode="normal"),
        {"image1": "scene32", "image2": "scene64"}, "image")
    add(p, "blur_1", "ImageBlur", dict(blur_radius=1, sigma=1.0), {"image": "scene32"}, "image")
    add(p, "blur_4", "ImageBlur", dict(blur_radius=4, sigma=2.5), {"image": "scene32"}, "image")
    add(p, "blur_too_small", "ImageBlur", dict(blur_radius=10, sigma=1.0), {"image": "solid8"}, "image")
    add(p, "sharpen_1", "ImageSharpen", dict(sharpen_radius=1, sigma=1.0, alpha=1.0), {"image": "scene32"}, "image")
    add(p, "sharpen_3", "ImageSharpen", dict(sharpen_radius=3, sigma=0.6, alpha=2.5), {"image": "scene32"}, "image")
    for dither in ["none", "floyd-steinberg", "bayer-2", "bayer-4", "bayer-8", "bayer-16"]:
        add(p, "quantize_8_" + dither, "ImageQuantize", dict(colors=8, dither=dither), {"image": "scene32"}, "image")
    add(p, "quantize_256_none", "ImageQuantize", dict(colors=256, dither="none"), {"image": "scene32"}, "image")
    add(p, "quantize_3_fs_64", "ImageQuantize", dict(colors=3, dither="floyd-steinberg"), {"image": "scene64"}, "image")
    add(p, "quantize_1_none", "ImageQuantize", dict(colors=1, dither="none"), {"image": "crop64"}, "image")
    # megapixels >= 0.01 makes these ~100x100: only their shape is kept (the pixels are
    # common_upscale's, tested with it).
    for method, mp, steps in [("bilinear", 0.01, 1), ("area", 0.013, 8), ("nearest-exact", 0.02, 1),
                              ("bicubic", 0.011, 7), ("lanczos", 0.01, 256)]:
        add(p, "total_pixels_" + method, "ImageScaleToTotalPixels",
            dict(upscale_method=method, megapixels=mp, resolution_steps=steps), {"image": "rgba32"}, "shape")
    return out


def post(url, path, body):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req))


def run(url, prompt):
    r = post(url, "/prompt", {"prompt": prompt, "client_id": "record_masks"})
    pid = r["prompt_id"]
    for _ in range(2400):
        h = json.load(urllib.request.urlopen(url + "/history/" + pid))
        st = h.get(pid, {}).get("status", {})
        if st.get("completed") or st.get("status_str") == "error":
            return h[pid]
        time.sleep(0.05)
    raise RuntimeError("timeout")


def read_safetensors(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        assert v["dtype"] == "F32", v
        a, b = v["data_offsets"]
        out[k] = (v["shape"], data[8 + n + a:8 + n + b])
    return out


def write_safetensors(path, tensors):
    header, chunks, off = {}, [], 0
    for name in sorted(tensors):
        shape, raw = tensors[name]
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + len(raw)]}
        chunks.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(chunks))


def mask_from_image(shape, raw):
    """MaskToImage output [B,H,W,3] back to [B,H,W] (the three channels are the same)."""
    b, h, w, c = shape
    floats = struct.unpack("<%df" % (b * h * w * c), raw)
    assert all(floats[i] == floats[i + 1] == floats[i + 2] for i in range(0, len(floats), 3))
    return [b, h, w], struct.pack("<%df" % (b * h * w), *floats[0::3])


def save_node(src, prefix, kind):
    """Nodes that save `src` (a [node, slot] link) as float32; a MASK goes through MaskToImage."""
    nodes = {}
    if kind == "mask":
        nodes["to_image_" + prefix] = node("MaskToImage", mask=src)
        src = ["to_image_" + prefix, 0]
    nodes["save_" + prefix] = node("OracleSaveImageTensor", images=src, filename_prefix="masks/" + prefix)
    return nodes


def fetch_saved(oracle_out, prefix, kind):
    files = sorted(glob.glob(os.path.join(oracle_out, "masks", prefix + "_*_.safetensors")))
    shape, raw = read_safetensors(files[-1])["image"]
    return mask_from_image(shape, raw) if kind == "mask" else (shape, raw)


def save_kind(kind):
    return "image" if kind == "shape" else kind


def graph_inputs():
    g = dict(HELPERS)
    for name, (n, _, _) in INPUTS.items():
        g[name] = n
    return g


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://127.0.0.1:8191")
    ap.add_argument("--oracle-output", default="/tmp/oracle-masks/output")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "../../tests/fixtures/masks"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    for f in glob.glob(os.path.join(a.oracle_output, "masks", "*.safetensors")):
        os.remove(f)

    # Inputs, as the oracle decoded them.
    prompt = graph_inputs()
    for name, (_, slot, kind) in INPUTS.items():
        prompt.update(save_node([name, slot], "in_" + name, kind))
    prompt.update(save_node(["solid8m", 0], "in_solid8m", "mask"))
    entry = run(a.url, prompt)
    assert entry["status"]["status_str"] == "success", entry["status"]
    inputs = {name: fetch_saved(a.oracle_output, "in_" + name, kind) for name, (_, _, kind) in INPUTS.items()}
    inputs["solid8m"] = fetch_saved(a.oracle_output, "in_solid8m", "mask")
    write_safetensors(os.path.join(a.out, "inputs.safetensors"), inputs)

    results, meta = {}, {}
    for c in cases():
        prompt = graph_inputs()
        ins = dict(c["widgets"])
        for inp, src in c["links"].items():
            ins[inp] = [src, INPUTS[src][1] if src in INPUTS else 0]
        prompt["case"] = node(c["class_type"], **ins)
        prompt.update(save_node(["case", 0], c["name"], save_kind(c["kind"])))
        entry = run(a.url, prompt)
        m = dict(family=c["family"], class_type=c["class_type"], widgets=c["widgets"], links=c["links"],
                 kind=c["kind"])
        if entry["status"]["status_str"] == "success" and c["kind"] == "shape":
            m["shape"] = fetch_saved(a.oracle_output, c["name"], "image")[0]
        elif entry["status"]["status_str"] == "success":
            results.setdefault(c["family"], {})[c["name"]] = fetch_saved(a.oracle_output, c["name"], c["kind"])
        else:
            err = {k: v for k, v in entry["status"]["messages"]}.get("execution_error", {})
            m["error"] = dict(exception_type=err.get("exception_type"), exception_message=err.get("exception_message"))
        meta[c["name"]] = m
        print(c["name"], "error: " + str(m["error"]) if "error" in m else "ok", file=sys.stderr)
    for family, tensors in results.items():
        write_safetensors(os.path.join(a.out, family + ".safetensors"), tensors)
    with open(os.path.join(a.out, "cases.json"), "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
