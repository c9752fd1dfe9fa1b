#!/usr/bin/env python3
"""Records the real ComfyUI's answers to a list of HTTP requests into tests/fixtures/routes/recorded.json;
tests/routes/recorded_routes_test.cpp replays them against comfycpp and compares.

The oracle must run with its input, output, temp and user folders in one place this script may wipe:

    mkdir -p /tmp/rr/{input,output,user,temp}
    cd ../shared/oracle && COMFYUI_GIT=... PORT=8311 ORACLE_OUT=/tmp/rr/output ./start.sh \
        --input-directory /tmp/rr/input --user-directory /tmp/rr/user --temp-directory /tmp/rr/temp &
    tools/oracle/record_routes.py --port 8311 --dirs /tmp/rr

The requests run in order against a server whose input folder holds tests/fixtures/routes/input/
(written by this script) and whose output, temp and user folders start empty; queue and history are
cleared first. Each entry: {"request": {method, path, headers, body | body_base64}, "answer":
{status, content_type, body (JSON, or text) | body_sha256 (binary) [+ image: pixel sha256]},
"volatile": [JSON pointers whose values legitimately differ; a "*" segment matches every key or
index], optional "wait_history" (a prompt id whose history entry must exist before the request is
sent), "compare": "exact" (default), "pixels" (images: the decoded pixels, not the bytes) or
"status" (status and content type only), "known_difference" (why comfycpp answers otherwise)}.
Known differences are kept across recordings: they live in KNOWN below."""
import argparse
import base64
import hashlib
import io
import json
import os
import shutil
import sys
import time
import urllib.error
import urllib.request

from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "..", "tests", "fixtures", "routes")
PROMPT_ID = "4b1d9a3e-0f7c-4c5e-9a51-7d2f3e8c1a01"
PROMPT_ID2 = "4b1d9a3e-0f7c-4c5e-9a51-7d2f3e8c1a02"
BOUNDARY = "----recordroutesboundary7MA4YWxkTrZu0gW"

# Why comfycpp answers a request otherwise, keyed by "METHOD PATH" (found with --replay).
KNOWN = {
    "GET /internal/files/temp":
        "ComfyUI deletes its temp folder at start and makes it only when something is saved there, so "
        "os.listdir raises and aiohttp answers 500; comfycpp keeps the folder and lists it (200, []).",
    "GET /view?filename=inner.png&subfolder=..%2Finput%2Fsub&type=input":
        "ComfyUI normalises the path and serves it because it stays inside input/; comfycpp refuses every "
        "'..' segment in filename and subfolder (403), the stricter rule of issue 5's security defaults.",
}


def png_bytes(w, h, color, mode="RGBA"):
    out = io.BytesIO()
    Image.new(mode, (w, h), color).save(out, "PNG")
    return out.getvalue()


def gradient_png(w, h):
    img = Image.new("RGBA", (w, h))
    img.putdata([((x * 40) % 256, (y * 60) % 256, (x * y * 7) % 256, 128 + (x + y) * 8 % 128)
                 for y in range(h) for x in range(w)])
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def multipart(fields):
    """fields: (name, filename or None, bytes, content type or None)."""
    out = b""
    for name, filename, data, ctype in fields:
        out += f"--{BOUNDARY}\r\n".encode()
        disp = f'Content-Disposition: form-data; name="{name}"'
        if filename is not None:
            disp += f'; filename="{filename}"'
        out += disp.encode() + b"\r\n"
        if ctype:
            out += f"Content-Type: {ctype}\r\n".encode()
        out += b"\r\n" + data + b"\r\n"
    out += f"--{BOUNDARY}--\r\n".encode()
    return {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}, out


def node(cls, **inputs):
    return {"class_type": cls, "inputs": inputs}


def invert_prompt(color=0):
    return {"1": node("EmptyImage", width=8, height=6, batch_size=1, color=color),
            "2": node("ImageInvert", image=["1", 0]),
            "3": node("SaveImage", filename_prefix="rr", images=["2", 0])}


SYSTEM_STATS_VOLATILE = [
    "/system/ram_total", "/system/ram_free", "/system/comfyui_version", "/system/python_version",
    "/system/pytorch_version", "/system/embedded_python", "/system/argv", "/system/required_frontend_version",
    "/system/installed_templates_version", "/system/required_templates_version", "/devices"]


def mask(value, parts):
    """Replaces the value at the JSON pointer `parts` ("*": every key or index) by "<volatile>"."""
    if not parts:
        return "<volatile>"
    head, rest = parts[0], parts[1:]
    if isinstance(value, dict):
        for k in list(value):
            if head == "*" or k == head:
                value[k] = mask(value[k], rest)
    elif isinstance(value, list):
        for i in range(len(value)):
            if head == "*" or head == str(i):
                value[i] = mask(value[i], rest)
    return value


def cases():
    """(method, path, body (bytes | dict | None), extra headers, options)."""
    J = {"Content-Type": "application/json"}
    c = []

    def add(method, path, body=None, headers=None, **opts):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers = {**J, **(headers or {})}
        c.append((method, path, body, headers or ({} if body is None else J), opts))

    # The 46 of compare_routes.py.
    sys.path.insert(0, HERE)
    from compare_routes import CASES
    for method, path, body in CASES:
        add(method, path, body, **({"volatile": SYSTEM_STATS_VOLATILE} if path.startswith("/system_stats") else {}))

    # Queue, prompt and history, empty.
    add("GET", "/prompt")
    add("GET", "/api/prompt")
    add("GET", "/queue")
    add("GET", "/history")
    add("GET", "/api/jobs")
    add("GET", "/features")
    add("GET", "/models")
    add("GET", "/embeddings", volatile=[""])
    add("GET", "/models/checkpoints", volatile=[""])
    add("GET", "/experiment/models", volatile=["/*/folders"])
    add("GET", "/experiment/models/checkpoints", volatile=[""])
    add("GET", "/internal/folder_paths", volatile=["/*"])
    add("GET", "/internal/files/input")
    add("GET", "/internal/files/output")
    add("GET", "/internal/files/temp")
    add("GET", "/internal/logs", compare="status")
    add("GET", "/internal/logs/raw", volatile=["/entries", "/size"])

    # object_info for a few classes (LoadImage lists the input folder).
    for cls in ["EmptyImage", "ImageInvert", "SaveImage", "LoadImage", "LoadImageMask", "ImageScale",
                "KSampler", "Nope"]:
        add("GET", f"/object_info/{cls}")
    add("GET", "/api/object_info/ImageInvert")

    # Validation errors.
    add("POST", "/prompt", {"prompt": {"1": node("ImageInvert")}})
    add("POST", "/prompt", {"prompt": {"1": node("EmptyImage", width=8, height=8, batch_size=1, color=0)}})
    add("POST", "/prompt", {"prompt": {"1": node("EmptyImage", width="x", height=8, batch_size=1, color=0),
                                       "2": node("SaveImage", filename_prefix="a", images=["1", 0])}})
    add("POST", "/prompt", {"prompt": {"1": node("EmptyImage", width=0, height=8, batch_size=1, color=0),
                                       "2": node("SaveImage", filename_prefix="a", images=["1", 0])}})
    add("POST", "/prompt", {"prompt": {"2": node("SaveImage", filename_prefix="a", images=["9", 0])}},
        volatile=["/node_errors/2/errors/0/extra_info/traceback"])  # Python's stack
    add("POST", "/prompt", {"prompt": {"1": node("LoadImage", image="missing.png"),
                                       "2": node("SaveImage", filename_prefix="a", images=["1", 0])}})
    add("POST", "/prompt", {"prompt": "text"})
    add("POST", "/prompt", {"prompt": invert_prompt(), "number": "x"})

    # Uploads: ComfyUI's naming on clashes, duplicates, overwrite, subfolders, types; masks.
    example = open(os.path.join(FIXTURES, "input", "example.png"), "rb").read()
    other = png_bytes(4, 3, (0, 255, 0, 255))
    for fields, note in [
        ([("image", "example.png", example, "image/png")], "the same bytes: the same name"),
        ([("image", "example.png", other, "image/png")], "other bytes: a new name"),
        ([("image", "example.png", other, "image/png")], "the renamed duplicate again"),
        ([("image", "example.png", other, "image/png"), ("overwrite", None, b"true", None)], "overwrite"),
        ([("image", "up.png", other, "image/png"), ("subfolder", None, b"uploads", None)], "a subfolder"),
        ([("image", "up.png", other, "image/png"), ("type", None, b"temp", None)], "into temp"),
        ([("image", "up.png", other, "image/png"), ("subfolder", None, b"../x", None)], "an escaping subfolder"),
        ([("nope", "up.png", other, "image/png")], "no image field"),
    ]:
        h, body = multipart(fields)
        add("POST", "/upload/image", body, h)
    mask = png_bytes(4, 3, (0, 0, 0, 100))
    h, body = multipart([("image", "mask.png", mask, "image/png"),
                         ("original_ref", None, json.dumps({"filename": "example.png", "type": "input",
                                                            "subfolder": ""}).encode(), None)])
    add("POST", "/upload/mask", body, h)
    h, body = multipart([("image", "mask.png", mask, "image/png"),
                         ("original_ref", None, json.dumps({"filename": "nope.png"}).encode(), None)])
    add("POST", "/upload/mask", body, h)
    add("GET", "/internal/files/input")
    add("GET", "/object_info/LoadImage")

    # /view: raw files, channels, previews, subfolders, errors.
    add("GET", "/view?filename=example.png&type=input")
    add("GET", "/view?filename=example.png&type=input&channel=rgba")
    add("GET", "/view?filename=example.png&type=input&channel=rgb", compare="pixels")
    add("GET", "/view?filename=example.png&type=input&channel=a", compare="pixels")
    add("GET", "/view?filename=example.png&type=input&preview=webp;90", compare="pixels")
    add("GET", "/view?filename=example.png&type=input&preview=jpeg;50", compare="status")
    add("GET", "/view?filename=example%20(1).png&type=input")
    add("GET", "/view?filename=inner.png&subfolder=sub&type=input")
    add("GET", "/view?filename=up.png&subfolder=uploads&type=input")
    add("GET", "/view?filename=up.png&type=temp")
    add("GET", "/view?filename=nope.png&type=input")
    add("GET", "/view?filename=inner.png&subfolder=..%2Finput%2Fsub&type=input")
    add("GET", "/view?filename=example.png&type=input&channel=bogus")

    # A tiny prompt: EmptyImage -> ImageInvert -> SaveImage; history, jobs, the output image.
    add("POST", "/prompt", {"prompt": invert_prompt(), "prompt_id": PROMPT_ID, "client_id": "rr-client",
                            "extra_data": {"extra_pnginfo": {"workflow": {"nodes": []}}}},
        volatile=["/number"])
    hist_volatile = [f"/{PROMPT_ID}/prompt/0", f"/{PROMPT_ID}/prompt/3/create_time",
                     f"/{PROMPT_ID}/status/messages/*/1/timestamp"]
    add("GET", f"/history/{PROMPT_ID}", wait_history=PROMPT_ID, volatile=hist_volatile)
    add("GET", "/history", volatile=hist_volatile)
    add("GET", "/history?max_items=1", volatile=hist_volatile)
    add("GET", "/api/history?max_items=0")
    add("GET", "/history?offset=1")
    add("GET", "/queue")
    add("GET", "/prompt")
    add("GET", "/internal/files/output")
    add("GET", "/view?filename=rr_00001_.png&type=output", compare="pixels")
    jobs_volatile = ["/jobs/*/create_time", "/jobs/*/execution_start_time", "/jobs/*/execution_end_time",
                     "/jobs/*/priority", "/create_time", "/execution_start_time", "/execution_end_time",
                     "/priority", "/workflow/extra_data/create_time", "/execution_status/messages/*/1/timestamp"]
    add("GET", "/api/jobs", volatile=jobs_volatile)
    add("GET", "/api/jobs?status=completed&limit=5", volatile=jobs_volatile)
    add("GET", f"/api/jobs/{PROMPT_ID}", volatile=jobs_volatile)
    # The same prompt again: every node cached.
    add("POST", "/prompt", {"prompt": invert_prompt(), "prompt_id": PROMPT_ID2, "client_id": "rr-client"},
        volatile=["/number"])
    add("GET", f"/history/{PROMPT_ID2}", wait_history=PROMPT_ID2,
        volatile=[f"/{PROMPT_ID2}/prompt/0", f"/{PROMPT_ID2}/prompt/3/create_time",
                  f"/{PROMPT_ID2}/status/messages/*/1/timestamp"])
    add("POST", "/history", {"delete": [PROMPT_ID2]})
    add("GET", f"/history/{PROMPT_ID2}")
    add("POST", "/queue", {"delete": ["nope"]})
    add("POST", "/queue", {"clear": True})
    add("POST", "/interrupt", {"prompt_id": "nope"})
    add("POST", "/free", {"unload_models": True, "free_memory": True})
    add("POST", "/history", {"clear": True})
    add("GET", "/history")

    # userdata: files, listings (v1 and v2), overwrite, move, delete, escapes.
    add("POST", "/userdata/rr.json", b'{"a": 1}', {"Content-Type": "application/json"})
    add("POST", "/userdata/rr.json?overwrite=false", b'{"a": 2}', {"Content-Type": "application/json"})
    add("POST", "/userdata/rr.json?full_info=true", b'{"a": 3}', {"Content-Type": "application/json"},
        volatile=["/modified", "/created"])
    add("POST", "/userdata/workflows%2Fw1.json", b'{"nodes": []}', {"Content-Type": "application/json"})
    add("GET", "/userdata/rr.json")
    add("GET", "/userdata/workflows%2Fw1.json")
    add("GET", "/userdata?dir=workflows")
    add("GET", "/userdata?dir=workflows&recurse=true&split=true")
    add("GET", "/userdata?dir=workflows&full_info=true", volatile=["/*/modified", "/*/created"])
    add("GET", "/userdata?dir=.")
    add("GET", "/v2/userdata", volatile=["/*/modified", "/*/created"])
    add("GET", "/v2/userdata?path=workflows", volatile=["/*/modified", "/*/created"])
    add("GET", "/v2/userdata?path=..")
    add("POST", "/userdata/rr.json/move/rr2.json")
    add("POST", "/userdata/rr2.json/move/workflows%2Fw1.json")
    add("POST", "/userdata/rr2.json/move/workflows%2Fw1.json?overwrite=true")
    add("GET", "/userdata/rr.json")
    add("DELETE", "/userdata/workflows%2Fw1.json")
    add("DELETE", "/userdata/workflows%2Fw1.json")
    add("GET", "/userdata/..%2Fx.json")
    add("GET", "/userdata/%2Fetc%2Fpasswd")
    add("POST", "/userdata/..%2F..%2Fx.json", b"{}", {"Content-Type": "application/json"})

    # settings and users.
    add("GET", "/settings")
    add("POST", "/settings/Comfy.RR", b'"value"', {"Content-Type": "application/json"})
    add("GET", "/settings/Comfy.RR")
    add("POST", "/settings", {"Comfy.A": 1, "Comfy.B": [1, 2]})
    add("GET", "/settings")
    add("GET", "/settings/Comfy.Missing")
    add("POST", "/settings/Comfy.Bad", b"{", {"Content-Type": "application/json"})
    add("GET", "/users")
    add("POST", "/users", {"username": "rr"}, volatile=[""])  # a new user's id: the name and a uuid4
    add("GET", "/system_stats", volatile=SYSTEM_STATS_VOLATILE)
    return c


def request(port, method, path, body, headers):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as res:
            return res.status, res.headers.get("Content-Type") or "", res.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type") or "", e.read()


def image_info(data):
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except Exception:
        return None
    return {"format": img.format, "mode": img.mode, "width": img.width, "height": img.height,
            "pixels_sha256": hashlib.sha256(img.tobytes()).hexdigest()}


def wipe(dirs):
    for sub in ["input", "output", "temp", "user"]:
        d = os.path.join(dirs, sub)
        os.makedirs(d, exist_ok=True)
        for name in os.listdir(d):
            p = os.path.join(d, name)
            shutil.rmtree(p) if os.path.isdir(p) and not os.path.islink(p) else os.remove(p)
    shutil.copytree(os.path.join(FIXTURES, "input"), os.path.join(dirs, "input"), dirs_exist_ok=True)


def replay(port, path):
    """Sends the recorded requests to a server (comfycpp over a fresh base directory whose input/ is a
    copy of tests/fixtures/routes/input) and prints the answers that differ: what the gtest checks,
    without a rebuild."""
    recorded = json.load(open(path))
    differ = 0
    for entry in recorded["entries"]:
        rq = entry["request"]
        if "wait_history" in entry:
            pid = entry["wait_history"]
            for _ in range(600):
                if pid in json.loads(request(port, "GET", f"/history/{pid}", None, {})[2]):
                    break
                time.sleep(0.05)
        body = rq["body"].encode() if "body" in rq else base64.b64decode(rq["body_base64"]) if "body_base64" in rq else None
        status, ctype, data = request(port, rq["method"], rq["path"], body, rq["headers"])
        ans, mode = entry["answer"], entry.get("compare", "exact")
        problems = []
        if status != ans["status"]:
            problems.append(f"status {status} != {ans['status']}")
        if ctype != ans["content_type"]:
            problems.append(f"content type {ctype!r} != {ans['content_type']!r}")
        if not problems and mode != "status":
            if "body" in ans:
                try:
                    mine = json.loads(data)
                except ValueError:
                    mine = data[:200]
                theirs = ans["body"]
                for pointer in entry.get("volatile", []):
                    parts = [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]]
                    mine, theirs = mask(mine, parts), mask(theirs, parts)
                if mine != theirs:
                    problems.append(f"body\n      ours:   {json.dumps(mine)[:600]}\n      theirs: {json.dumps(theirs)[:600]}")
            elif "text" in ans:
                if data.decode("utf-8", "replace") != ans["text"]:
                    problems.append(f"text {data[:200]!r} != {ans['text'][:200]!r}")
            elif mode == "pixels":
                if image_info(data) != ans.get("image"):
                    problems.append(f"pixels {image_info(data)} != {ans.get('image')}")
            elif hashlib.sha256(data).hexdigest() != ans["body_sha256"]:
                problems.append(f"bytes differ ({len(data)} bytes; theirs {ans.get('image')}, ours {image_info(data)})")
        if problems:
            differ += 1
            known = " [known: " + entry["known_difference"] + "]" if "known_difference" in entry else ""
            print(f"!! {rq['method']} {rq['path']} {rq.get('body', '')[:120]}{known}")
            for p in problems:
                print("    " + p)
    print(f"{len(recorded['entries']) - differ} same, {differ} differ")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--replay", type=int, metavar="PORT", help="compare a server's answers with the recording")
    ap.add_argument("--port", type=int, default=8311)
    ap.add_argument("--dirs", help="the folder holding the oracle's input/output/temp/user")
    ap.add_argument("--out", default=os.path.join(FIXTURES, "recorded.json"))
    args = ap.parse_args()
    if args.replay:
        return replay(args.replay, args.out)
    if not args.dirs:
        ap.error("--dirs is required to record")

    os.makedirs(os.path.join(FIXTURES, "input", "sub"), exist_ok=True)
    with open(os.path.join(FIXTURES, "input", "example.png"), "wb") as f:
        f.write(gradient_png(5, 4))
    with open(os.path.join(FIXTURES, "input", "sub", "inner.png"), "wb") as f:
        f.write(png_bytes(3, 2, (10, 20, 30), "RGB"))
    request(args.port, "POST", "/queue", b'{"clear": true}', {"Content-Type": "application/json"})
    request(args.port, "POST", "/history", b'{"clear": true}', {"Content-Type": "application/json"})
    wipe(args.dirs)

    entries = []
    for method, path, body, headers, opts in cases():
        if "wait_history" in opts:
            pid = opts["wait_history"]
            for _ in range(600):
                if pid in json.loads(request(args.port, "GET", f"/history/{pid}", None, {})[2]):
                    break
                time.sleep(0.05)
        status, ctype, data = request(args.port, method, path, body, headers)
        req = {"method": method, "path": path, "headers": headers or {}}
        if body is not None:
            try:
                req["body"] = body.decode("utf-8")
            except UnicodeDecodeError:
                req["body_base64"] = base64.b64encode(body).decode()
        answer = {"status": status, "content_type": ctype}
        mime = ctype.split(";")[0].strip()
        if opts.get("compare") == "status":
            pass  # only status and content type are compared: the body is not kept
        elif mime == "application/json" and data:
            # Volatile values are stored masked: no times, versions or this machine's paths in fixtures.
            value = json.loads(data)
            for pointer in opts.get("volatile", []):
                parts = [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]]
                value = mask(value, parts)
            answer["body"] = value
        elif mime.startswith("text/") or not data:
            answer["text"] = data.decode("utf-8", "replace")
        else:
            answer["body_sha256"] = hashlib.sha256(data).hexdigest()
            info = image_info(data)
            if info:
                answer["image"] = info
        entry = {"request": req, "answer": answer}
        for key in ["volatile", "wait_history", "compare"]:
            if key in opts:
                entry[key] = opts[key]
        known = KNOWN.get(f"{method} {path}")
        if known:
            entry["known_difference"] = known
        entries.append(entry)
        print(f"{status} {method} {path} {ctype}", file=sys.stderr)
    with open(args.out, "w") as f:
        json.dump({"comfyui_version": "0.8.0", "entries": entries}, f, indent=1, sort_keys=False)
        f.write("\n")
    print(f"{len(entries)} entries -> {args.out}")


if __name__ == "__main__":
    main()
