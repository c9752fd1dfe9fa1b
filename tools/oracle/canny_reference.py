#!/usr/bin/env python3
"""Reference edges for the Canny node's test (tests/nodes/canny_test.cpp), from an independent
NumPy/SciPy implementation of the algorithm kornia.filters.canny publishes (ComfyUI's Canny node
calls it with a 5x5 Gaussian of sigma 1 and hysteresis; kornia is not available to the oracle).

Steps: grayscale 0.299/0.587/0.114; Gaussian blur (5 taps, sigma 1, normalised; mirrored border,
which is torch's "reflect"); Sobel gradients (unnormalised, border replicated); magnitude
sqrt(gx^2 + gy^2 + 1e-6); direction rounded to 45 degrees (half to even); non-maximum suppression
against the two neighbours along the direction (zero outside the image; strictly greater);
weak > low, strong > high; hysteresis as a flood fill over 8-connected weak pixels from the strong
ones (kornia iterates one ring per pass until nothing changes: the same fixed point).

Usage: /usr/bin/python3 tools/oracle/canny_reference.py IMAGE.png OUT.safetensors LOW HIGH [LOW HIGH ...]
Writes float32 tensors "image" [1,H,W,3] (the decoded input, 0..1) and "edges_<low>_<high>" [1,H,W].
"""
import json
import struct
import sys
from collections import deque

import numpy as np
from PIL import Image
from scipy import ndimage


def canny(img, low, high):
    f32 = np.float32
    gray = (img[..., 0] * f32(0.299) + img[..., 1] * f32(0.587) + img[..., 2] * f32(0.114)).astype(f32)
    d = np.arange(5, dtype=f32) - 2
    g = np.exp(-(d * d) / f32(2.0)).astype(f32)
    g = (g / g.sum()).astype(f32)
    blurred = ndimage.correlate1d(gray, g, axis=1, mode="mirror")
    blurred = ndimage.correlate1d(blurred, g, axis=0, mode="mirror").astype(f32)
    p = np.pad(blurred, 1, mode="edge")
    H, W = gray.shape
    gx = np.zeros_like(gray)
    gy = np.zeros_like(gray)
    for y in range(H):
        for x in range(W):
            win = p[y:y + 3, x:x + 3]
            gx[y, x] = (win[0, 2] - win[0, 0]) + 2 * (win[1, 2] - win[1, 0]) + (win[2, 2] - win[2, 0])
            gy[y, x] = (win[2, 0] - win[0, 0]) + 2 * (win[2, 1] - win[0, 1]) + (win[2, 2] - win[0, 2])
    mag = np.sqrt(gx * gx + gy * gy + f32(1e-6)).astype(f32)
    ang = np.degrees(np.arctan2(gy, gx)).astype(f32)
    sector = np.round(ang / f32(45)).astype(np.int64) % 8  # 0: +x, 1: +x+y, 2: +y, ... (y down)
    step = [(0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1), (-1, 0), (-1, 1)]  # (dy, dx)

    def at(y, x):
        return mag[y, x] if 0 <= y < H and 0 <= x < W else f32(0)

    keep = np.zeros_like(mag)
    for y in range(H):
        for x in range(W):
            dy, dx = step[sector[y, x]]
            if mag[y, x] > at(y + dy, x + dx) and mag[y, x] > at(y - dy, x - dx):
                keep[y, x] = mag[y, x]
    weak = keep > low
    strong = keep > high
    out = strong.copy()
    queue = deque(zip(*np.nonzero(strong)))
    while queue:
        y, x = queue.popleft()
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                yy, xx = y + dy, x + dx
                if 0 <= yy < H and 0 <= xx < W and weak[yy, xx] and not out[yy, xx]:
                    out[yy, xx] = True
                    queue.append((yy, xx))
    return out.astype(np.float32)


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype="<f4")
        b = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def main():
    img = np.asarray(Image.open(sys.argv[1]).convert("RGB"), dtype=np.float32) / np.float32(255.0)
    out = {"image": img[None]}
    args = sys.argv[3:]
    for i in range(0, len(args), 2):
        low, high = float(args[i]), float(args[i + 1])
        e = canny(img, np.float32(low), np.float32(high))
        out["edges_%s_%s" % (args[i], args[i + 1])] = e[None]
        print("low %s high %s: %d edge pixels of %d" % (args[i], args[i + 1], int(e.sum()), e.size))
    write_safetensors(sys.argv[2], out)


if __name__ == "__main__":
    main()
