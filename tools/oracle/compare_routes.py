#!/usr/bin/env python3
"""Sends the same requests to the real ComfyUI (the oracle) and to comfycpp and prints where the
status or the content type differ, with both bodies cut short. Both servers must be running:

    tools/oracle/compare_routes.py --oracle 8195 --ours 8396 [--all]

Model lists differ between the two (different model folders), so bodies are shown, not compared.
This is how the /features int and the /ws 400 text in tests/routes/system_test.cpp were found."""
import argparse
import json
import urllib.error
import urllib.request

CASES = [
    ("GET", "/prompt", None), ("POST", "/prompt", b"{"), ("POST", "/prompt", b"[]"),
    ("POST", "/prompt", b'{"prompt": {}}'),
    ("POST", "/prompt", b'{"prompt": {"1": {"class_type": "Nope", "inputs": {}}}}'),
    ("GET", "/history/nope", None), ("GET", "/history?max_items=abc", None), ("GET", "/object_info/Nope", None),
    ("GET", "/view", None), ("GET", "/view?filename=", None), ("GET", "/view?filename=x.png&type=bogus", None),
    ("GET", "/view?filename=..%2Fx.png", None), ("GET", "/view?filename=x.png&subfolder=..", None),
    ("GET", "/models/nope", None), ("GET", "/api/jobs/nope", None), ("GET", "/api/jobs?status=bogus", None),
    ("GET", "/api/jobs?limit=0", None), ("POST", "/queue", b"{"), ("POST", "/queue", b'{"delete": "x"}'),
    ("POST", "/history", b'{"delete": 5}'), ("POST", "/free", b""), ("POST", "/interrupt", b""),
    ("GET", "/interrupt", None), ("DELETE", "/interrupt", None), ("POST", "/upload/image", b"x"),
    ("GET", "/userdata", None), ("GET", "/userdata?dir=nope", None), ("GET", "/userdata/nope.json", None),
    ("POST", "/settings", b"{"), ("GET", "/settings/nope", None), ("GET", "/nope", None),
    ("GET", "/internal/files/bogus", None), ("GET", "/view_metadata/checkpoints?filename=nope.safetensors", None),
    ("GET", "/experiment/models/nope", None), ("PATCH", "/internal/logs/subscribe", b"{"), ("GET", "/features", None),
    ("GET", "/users", None), ("GET", "/i18n", None), ("GET", "/workflow_templates", None),
    ("GET", "/global_subgraphs", None), ("GET", "/extensions", None), ("GET", "/v2/userdata?path=nope", None),
    ("GET", "/ws", None), ("GET", "/system_stats?clientId=x", None), ("HEAD", "/prompt", None),
    ("OPTIONS", "/prompt", None),
]


def send(port, method, path, body):
    headers = {"Content-Type": "application/json"} if body is not None else {}
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as res:
            return res.status, res.headers.get("Content-Type") or "", res.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type") or "", e.read()


def summary(answer):
    status, ctype, body = answer
    try:
        shown = json.dumps(json.loads(body))[:160]
    except ValueError:
        shown = repr(body[:100])
    return status, ctype.split(";")[0], shown


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--oracle", type=int, default=8195)
    ap.add_argument("--ours", type=int, default=8188)
    ap.add_argument("--all", action="store_true", help="print matching answers too")
    args = ap.parse_args()
    differ = 0
    for method, path, body in CASES:
        o, c = summary(send(args.oracle, method, path, body)), summary(send(args.ours, method, path, body))
        same = o[:2] == c[:2] and (o[0] >= 500 or o[2] == c[2] or path.startswith(("/system_stats", "/users")))
        differ += not same
        if args.all or not same:
            print(f"{'   ' if same else '!! '}{method} {path} {body!r}\n    oracle: {o}\n    ours:   {c}")
    print(f"{len(CASES) - differ} same, {differ} differ")


if __name__ == "__main__":
    main()
