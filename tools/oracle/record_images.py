#!/usr/bin/env python3
"""Record the image-node fixtures (tests/fixtures/images) from the real ComfyUI 0.8.0.

Three steps, each its own sub-command (record_images.sh-style driver below in main()):
  inputs  OUT_DIR               write the generated input images (Pillow, deterministic)
  server  --url URL --work DIR --out OUT
                                post each case's workflow to a running oracle (started with the
                                oracle_save_tensor extension and --input-directory DIR/input) and
                                copy the IMAGE tensors (OracleSaveImageTensor, float32 safetensors)
                                and the saved files into OUT
  direct  OUT                   run comfy.utils.common_upscale in-process (run with the oracle's
                                PYTHONPATH, from inside its ComfyUI tree) for what no node reaches
                                with arbitrary tensors: bislerp, and lanczos on RGBA

Run with Debian's /usr/bin/python3 (Pillow 9.4, torch 1.13), the oracle's own interpreter.
"""
import argparse
import io
import json
import os
import shutil
import sys
import time
import urllib.request
import uuid

PROMPT_MARK = "oracle-prompt"


# ---------------------------------------------------------------- generated inputs

def make_inputs(out):
    import numpy as np
    from PIL import Image
    os.makedirs(out, exist_ok=True)
    yy, xx = np.mgrid[0:12, 0:20]
    rgb = np.stack([(xx * 13) % 256, (yy * 21) % 256, ((xx + yy) * 7) % 256], -1).astype(np.uint8)
    # 16-bit grey: values that straddle multiples of 255 (Pillow's I-mode path truncates)
    g16 = ((xx * 3300 + yy * 517) % 65536).astype(np.uint16)
    g16[0, :6] = [0, 254, 255, 256, 65535, 510]
    Image.fromarray(g16, mode="I;16").save(os.path.join(out, "gen_grey16.png"))
    Image.fromarray(rgb[..., 0], mode="L").save(os.path.join(out, "gen_grey.png"))
    la = Image.merge("LA", [Image.fromarray(rgb[..., 1]), Image.fromarray(rgb[..., 2])])
    la.save(os.path.join(out, "gen_la.png"))
    pal = Image.fromarray(rgb).quantize(colors=16, method=Image.Quantize.MEDIANCUT)
    pal.info["transparency"] = 3
    pal.save(os.path.join(out, "gen_palette_trns.png"), transparency=3)
    Image.fromarray(rgb).quantize(colors=8, method=Image.Quantize.MEDIANCUT).save(os.path.join(out, "gen_palette.png"))
    # 16-bit RGB PNG, written by hand-packing big-endian samples through Pillow's raw encoder
    rgb16 = (rgb.astype(np.uint16) * 257 + 77).astype(">u2")
    im16 = Image.frombytes("RGB", (20, 12), rgb16.tobytes(), "raw", "RGB;16B")
    # Pillow cannot write 16-bit RGB PNGs; write it with zlib ourselves.
    write_png16(os.path.join(out, "gen_rgb16.png"), rgb16)
    del im16
    rgb_img = Image.fromarray(rgb)
    rgb_img.save(os.path.join(out, "gen_plain.jpg"), quality=90)
    Image.fromarray(rgb[..., 1]).save(os.path.join(out, "gen_grey.jpg"), quality=90)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 clockwise when shown
    rgb_img.save(os.path.join(out, "gen_exif6.jpg"), quality=90, exif=exif.tobytes())
    exif[0x0112] = 3
    rgb_img.save(os.path.join(out, "gen_exif3.png"), exif=exif.tobytes())
    rgba = np.concatenate([rgb, ((xx * 11 + yy * 5) % 256).astype(np.uint8)[..., None]], -1)
    Image.fromarray(rgba, "RGBA").save(os.path.join(out, "gen_rgba.webp"), lossless=True)
    rgb_img.save(os.path.join(out, "gen_lossy.webp"), quality=70)
    frames = [Image.fromarray(np.roll(rgb, 3 * i, axis=1)) for i in range(3)]
    frames[0].save(os.path.join(out, "gen_anim.webp"), save_all=True, append_images=frames[1:], lossless=True,
                   duration=100)
    with open(os.path.join(out, "gen_corrupt.png"), "wb") as f:
        data = open(os.path.join(out, "gen_grey.png"), "rb").read()
        f.write(data[:len(data) // 2])
    with open(os.path.join(out, "gen_not_an_image.png"), "wb") as f:
        f.write(b"this is not an image\n")


def write_png16(path, arr):
    import struct
    import zlib
    h, w, _ = arr.shape
    raw = b"".join(b"\0" + arr[y].tobytes() for y in range(h))

    def chunk(t, d):
        c = struct.pack(">I", len(d)) + t + d
        return c + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


# ---------------------------------------------------------------- server cases

def tensor(node, tag, case, slot=0):
    return {"class_type": "OracleSaveImageTensor",
            "inputs": {"images": [node, slot], "filename_prefix": "tensors/%s__%s" % (case, tag)}}


def mask_tensor(prompt, node, slot, tag, case):
    mid = "m" + node + str(slot)
    prompt[mid] = {"class_type": "MaskToImage", "inputs": {"mask": [node, slot]}}
    prompt["t" + mid] = tensor(mid, tag, case)


LOADABLE = ["scene_32x32.png", "scene_64x64_alpha_hole.png", "mask_64x64.png", "gen_grey16.png", "gen_grey.png",
            "gen_la.png", "gen_palette_trns.png", "gen_palette.png", "gen_rgb16.png", "gen_plain.jpg", "gen_grey.jpg",
            "gen_exif6.jpg", "gen_exif3.png", "gen_rgba.webp", "gen_lossy.webp", "gen_anim.webp"]


def cases():
    out = {}
    for f in LOADABLE:
        c = "load_" + f.replace(".", "_")
        p = {"1": {"class_type": "LoadImage", "inputs": {"image": f}}, "t1": tensor("1", "image", c)}
        mask_tensor(p, "1", 1, "mask", c)
        out[c] = p
    for f, ch in [("scene_64x64_alpha_hole.png", "alpha"), ("gen_la.png", "alpha"), ("gen_grey16.png", "red"),
                  ("gen_palette_trns.png", "alpha"), ("gen_plain.jpg", "green"), ("gen_exif6.jpg", "blue")]:
        c = "loadmask_%s_%s" % (f.replace(".", "_"), ch)
        p = {"1": {"class_type": "LoadImageMask", "inputs": {"image": f, "channel": ch}}}
        mask_tensor(p, "1", 0, "mask", c)
        out[c] = p
    src = {"class_type": "LoadImage", "inputs": {"image": "scene_32x32.png"}}
    pad = {"class_type": "ImagePadForOutpaint",
           "inputs": {"image": ["1", 0], "left": 8, "top": 0, "right": 16, "bottom": 8, "feathering": 6}}
    for m in ["nearest-exact", "bilinear", "area", "bicubic", "lanczos"]:
        for (w, h, crop) in [(48, 40, "center"), (20, 13, "disabled")]:
            c = "scale_%s_%dx%d_%s" % (m, w, h, crop)
            out[c] = {"1": src, "2": pad,
                      "3": {"class_type": "ImageScale", "inputs": {"image": ["2", 0], "upscale_method": m,
                                                                    "width": w, "height": h, "crop": crop}},
                      "t3": tensor("3", "image", c)}
        c = "scaleby_%s_1_37" % m
        out[c] = {"1": src, "3": {"class_type": "ImageScaleBy",
                                  "inputs": {"image": ["1", 0], "upscale_method": m, "scale_by": 1.37}},
                  "t3": tensor("3", "image", c)}
    out["scale_keep_aspect"] = {"1": src, "3": {"class_type": "ImageScale", "inputs": {
        "image": ["1", 0], "upscale_method": "bilinear", "width": 0, "height": 21, "crop": "disabled"}},
        "t3": tensor("3", "image", "scale_keep_aspect")}
    c = "pad_outpaint"
    out[c] = {"1": src, "2": pad, "t2": tensor("2", "image", c)}
    mask_tensor(out[c], "2", 1, "mask", c)
    c = "pad_outpaint_all"
    out[c] = {"1": src, "2": {"class_type": "ImagePadForOutpaint", "inputs": {
        "image": ["1", 0], "left": 4, "top": 6, "right": 2, "bottom": 3, "feathering": 9}}, "t2": tensor("2", "image", c)}
    mask_tensor(out[c], "2", 1, "mask", c)
    out["empty_image"] = {"1": {"class_type": "EmptyImage", "inputs": {"width": 7, "height": 5, "batch_size": 2,
                                                                      "color": 0x12ABEF}},
                          "t1": tensor("1", "image", "empty_image")}
    out["invert"] = {"1": src, "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
                     "t2": tensor("2", "image", "invert")}
    rgba = {"class_type": "LoadImage", "inputs": {"image": "gen_rgba.webp"}}
    out["batch_resize"] = {"1": src, "2": rgba, "3": {"class_type": "ImageBatch", "inputs": {
        "image1": ["1", 0], "image2": ["2", 0]}}, "t3": tensor("3", "image", "batch_resize")}
    big = {"class_type": "LoadImage", "inputs": {"image": "scene_64x64.png"}}
    out["crop"] = {"1": big, "2": {"class_type": "ImageCrop", "inputs": {"image": ["1", 0], "width": 20, "height": 16,
                                                                        "x": 50, "y": 7}},
                   "t2": tensor("2", "image", "crop")}
    out["repeat_from_batch"] = {
        "1": src, "2": {"class_type": "ImagePadForOutpaint", "inputs": {"image": ["1", 0], "left": 0, "top": 0,
                                                                         "right": 0, "bottom": 0, "feathering": 0}},
        "3": {"class_type": "ImageBatch", "inputs": {"image1": ["1", 0], "image2": ["5", 0]}},
        "5": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "6": {"class_type": "RepeatImageBatch", "inputs": {"image": ["3", 0], "amount": 3}},
        "7": {"class_type": "ImageFromBatch", "inputs": {"image": ["6", 0], "batch_index": 3, "length": 9}},
        "t6": tensor("6", "repeat", "repeat_from_batch"), "t7": tensor("7", "from_batch", "repeat_from_batch")}
    for flip in ["x-axis: vertically", "y-axis: horizontally"]:
        c = "flip_" + flip[0]
        out[c] = {"1": src, "2": {"class_type": "ImageFlip", "inputs": {"image": ["1", 0], "flip_method": flip}},
                  "t2": tensor("2", "image", c)}
    for rot in ["90 degrees", "180 degrees", "270 degrees"]:
        c = "rotate_" + rot.split()[0]
        out[c] = {"1": {"class_type": "LoadImage", "inputs": {"image": "gen_plain.jpg"}},
                  "2": {"class_type": "ImageRotate", "inputs": {"image": ["1", 0], "rotation": rot}},
                  "t2": tensor("2", "image", c)}
    for d, match, spacing, color in [("right", True, 4, "red"), ("down", True, 0, "white"), ("left", False, 6, "white"),
                                     ("up", False, 2, "blue")]:
        c = "stitch_%s_%s_%d_%s" % (d, "match" if match else "pad", spacing, color)
        out[c] = {"1": src, "2": {"class_type": "LoadImage", "inputs": {"image": "gen_rgba.webp"}},
                  "3": {"class_type": "ImageStitch", "inputs": {
                      "image1": ["1", 0], "image2": ["2", 0], "direction": d, "match_image_size": match,
                      "spacing_width": spacing, "spacing_color": color}},
                  "t3": tensor("3", "image", c)}
    # savers: the files themselves are recorded (pixels and metadata chunks)
    out["save_image"] = {"1": {"class_type": "LoadImage", "inputs": {"image": "scene_64x64_alpha_hole.png"}},
                         "2": {"class_type": "ImagePadForOutpaint", "inputs": {
                             "image": ["1", 0], "left": 0, "top": 0, "right": 8, "bottom": 0, "feathering": 0}},
                         "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0],
                                                                     "filename_prefix": "saved/save_image"}}}
    out["save_apng"] = {"1": src, "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
                        "3": {"class_type": "ImageBatch", "inputs": {"image1": ["1", 0], "image2": ["2", 0]}},
                        "4": {"class_type": "SaveAnimatedPNG", "inputs": {"images": ["3", 0], "fps": 7.0,
                                                                          "compress_level": 4,
                                                                          "filename_prefix": "saved/save_apng"}}}
    out["save_webp"] = {"1": src, "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
                        "3": {"class_type": "ImageBatch", "inputs": {"image1": ["1", 0], "image2": ["2", 0]}},
                        "4": {"class_type": "SaveAnimatedWEBP", "inputs": {
                            "images": ["3", 0], "fps": 7.0, "lossless": True, "quality": 80, "method": "default",
                            "filename_prefix": "saved/save_webp"}}}
    return out


EXTRA_PNGINFO = {"workflow": {"nodes": [], "note": "caf\u00e9 \u2713", "version": 0.4}, "other": [1, 2.5, None]}


def post(url, prompt):
    body = json.dumps({"prompt": prompt, "client_id": str(uuid.uuid4()),
                       "extra_data": {"extra_pnginfo": EXTRA_PNGINFO}}).encode()
    req = urllib.request.Request(url + "/prompt", data=body, headers={"Content-Type": "application/json"})
    pid = json.load(urllib.request.urlopen(req))["prompt_id"]
    t0 = time.time()
    while True:
        h = json.load(urllib.request.urlopen(url + "/history/" + pid))
        st = h.get(pid, {}).get("status", {})
        if st.get("completed") or st.get("status_str") == "error":
            return h[pid]
        if time.time() - t0 > 120:
            raise RuntimeError("timeout")
        time.sleep(0.05)


def run_server(url, work, out):
    os.makedirs(out, exist_ok=True)
    os.makedirs(os.path.join(out, "saved"), exist_ok=True)
    prompts = {}
    for name, prompt in cases().items():
        entry = post(url, prompt)
        if entry["status"]["status_str"] != "success":
            print("FAILED", name, json.dumps(entry["status"])[-1500:])
            continue
        prompts[name] = prompt
        for node_out in entry["outputs"].values():
            for item in node_out.get("tensors", []) + node_out.get("images", []):
                src = os.path.join(work, "output", item["subfolder"], item["filename"])
                if "tensors" in node_out and item in node_out["tensors"]:
                    dst = os.path.join(out, item["filename"].rsplit("_", 2)[0] + ".safetensors")
                else:
                    dst = os.path.join(out, "saved", item["filename"])
                shutil.copyfile(src, dst)
        print("ok", name)
    with open(os.path.join(out, "prompts.json"), "w") as f:
        json.dump({"extra_pnginfo": EXTRA_PNGINFO, "prompts": prompts}, f, indent=1)


# ---------------------------------------------------------------- in-process cases

def run_direct(out):
    import numpy as np
    import torch
    from PIL import Image
    import comfy.utils
    import safetensors.torch
    g = torch.Generator().manual_seed(7)
    latent = torch.randn(1, 4, 6, 5, generator=g)
    latent[0, :, 0, 0] = 0  # a zero vector (slerp's norm == 0 branch)
    latent[0, :, 1, 0] = latent[0, :, 1, 1]  # equal neighbours (dot == 1 branch)
    latent[0, :, 2, 0] = -latent[0, :, 2, 1]  # opposite neighbours
    res = {"latent": latent}
    res["bislerp_up"] = comfy.utils.common_upscale(latent, 11, 9, "bislerp", "disabled")
    res["bislerp_down"] = comfy.utils.common_upscale(latent, 3, 4, "bislerp", "center")
    rgba = torch.rand(1, 4, 9, 13, generator=g)
    rgba[:, 3, 0, :] = 0.0
    rgba[:, 3, 1, :] = 1.0
    res["rgba"] = rgba
    res["lanczos_rgba"] = comfy.utils.common_upscale(rgba, 17, 6, "lanczos", "disabled")
    rgb = torch.rand(2, 3, 7, 10, generator=g)
    res["rgb"] = rgb
    res["lanczos_rgb"] = comfy.utils.common_upscale(rgb, 23, 15, "lanczos", "center")
    video = torch.rand(1, 2, 3, 4, 5, generator=g)
    res["video"] = video
    res["video_bilinear"] = comfy.utils.common_upscale(video, 7, 6, "bilinear", "disabled")
    safetensors.torch.save_file({k: v.contiguous() for k, v in res.items()}, os.path.join(out, "upscale_direct.safetensors"))
    print("ok upscale_direct")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("inputs"); a.add_argument("out")
    b = sub.add_parser("server"); b.add_argument("--url", required=True); b.add_argument("--work", required=True)
    b.add_argument("--out", required=True)
    c = sub.add_parser("direct"); c.add_argument("out")
    args = ap.parse_args()
    if args.cmd == "inputs":
        make_inputs(args.out)
    elif args.cmd == "server":
        run_server(args.url, args.work, args.out)
    else:
        run_direct(args.out)


if __name__ == "__main__":
    main()
