#!/usr/bin/env python3
"""Record the real ComfyUI's answers to POST /prompt for invalid (and some valid) prompts.

Usage:
    record_validation.py [--url http://127.0.0.1:8188] [--out tests/fixtures/validation] [CASE ...]

Needs a running reference oracle (see ../shared/oracle/README.md) whose input directory holds
the PNGs of ../shared/fixtures/comfyui-ref/inputs and whose models are the tiny checkpoints.
For stable output file names, start it with an empty output directory.

For each case it writes <out>/<case>.json:
    {"case", "description",
     "request" (the JSON body posted) or "raw_body" (the raw string posted),
     "status" (HTTP status),
     "response" (parsed JSON) or "response_text" (when the answer is not JSON),
     "history" (only when the prompt was queued: the GET /history/<prompt_id> entry)}
Before each case the queue and the history are cleared (POST /queue, POST /history), but the
server's "number" counter (it grows with every POST /prompt whose body parses) and its node output
cache (which shows in the history's "execution_cached" message) survive; for fixtures that do not
depend on the order of the cases, run each case against a freshly started oracle:
record_validation_fresh.sh does that.

Stdlib only.  The cases are data: add one to CASES.
"""
import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request

CKPT = "tiny_sd15.safetensors"


# ---------------------------------------------------------------- graph helpers (plain dicts)
def node(class_type, **inputs):
    return {"class_type": class_type, "inputs": inputs}


def empty_image(w=64, h=64, color=0):
    return node("EmptyImage", width=w, height=h, batch_size=1, color=color)


def save(images, prefix):
    return node("SaveImage", images=images, filename_prefix=prefix)


def t2i(prefix, **ksampler_overrides):
    """Full text-to-image graph with the tiny SD1.5 checkpoint; KSampler is node "5"."""
    ks = dict(model=["1", 0], seed=1, steps=1, cfg=1.0, sampler_name="euler",
              scheduler="normal", positive=["2", 0], negative=["3", 0],
              latent_image=["4", 0], denoise=1.0)
    ks.update(ksampler_overrides)
    ks = {k: v for k, v in ks.items() if v is not DROP}
    return {
        "1": node("CheckpointLoaderSimple", ckpt_name=CKPT),
        "2": node("CLIPTextEncode", text="a photo", clip=["1", 1]),
        "3": node("CLIPTextEncode", text="", clip=["1", 1]),
        "4": node("EmptyLatentImage", width=64, height=64, batch_size=1),
        "5": {"class_type": "KSampler", "inputs": ks},
        "6": node("VAEDecode", samples=["5", 0], vae=["1", 2]),
        "7": save(["6", 0], prefix),
    }


DROP = object()  # marker: leave this input out


def with_(graph, node_id, **inputs):
    """Copy of graph with some inputs of one node replaced (DROP removes an input)."""
    g = json.loads(json.dumps(graph))
    for k, v in inputs.items():
        if v is DROP:
            g[node_id]["inputs"].pop(k, None)
        else:
            g[node_id]["inputs"][k] = v
    return g


def simple(prefix, **empty_image_inputs):
    """EmptyImage "1" -> SaveImage "2"."""
    g = {"1": empty_image(), "2": save(["1", 0], prefix)}
    return with_(g, "1", **empty_image_inputs)


# ---------------------------------------------------------------- the cases
# Each case: name, description, and either "body" (a JSON value, posted as JSON) or "raw_body"
# (a string, posted as is with Content-Type application/json).
CASES = [
    dict(name="valid_minimal",
         description="Baseline: EmptyImage -> SaveImage, valid; shows the normal 200 answer and history.",
         body={"prompt": simple("valid_minimal")}),
    dict(name="unknown_class",
         description='Node "3" has class_type "Foo" (not a node); a valid EmptyImage -> SaveImage branch too.',
         body={"prompt": {"1": empty_image(), "2": save(["1", 0], "unknown_class"),
                          "3": node("Foo", x=1)}}),
    dict(name="missing_class_type",
         description='Node "2" has no class_type.',
         body={"prompt": {"1": empty_image(), "2": {"inputs": {"images": ["1", 0]}}}}),
    dict(name="no_outputs",
         description="Only an EmptyImage: no output node.",
         body={"prompt": {"1": empty_image()}}),
    dict(name="prompt_empty_object",
         description='"prompt" is {}.',
         body={"prompt": {}}),
    dict(name="no_prompt",
         description='Body {} without a "prompt" key.',
         body={}),
    dict(name="prompt_not_object",
         description='"prompt" is a list holding a node object.',
         body={"prompt": [empty_image()]}),
    dict(name="prompt_not_object_string",
         description='"prompt" is a string.',
         body={"prompt": "abc"}),
    dict(name="prompt_not_object_empty_list",
         description='"prompt" is an empty list.',
         body={"prompt": []}),
    dict(name="node_not_object",
         description='Node "1" is a number instead of an object.',
         body={"prompt": {"1": 5}}),
    dict(name="malformed_json",
         description='Raw body \'{"prompt": \' (invalid JSON).',
         raw_body='{"prompt": '),
    dict(name="required_input_missing_upstream",
         description="Full t2i graph (tiny_sd15); KSampler \"5\" has no seed; feeds VAEDecode -> SaveImage.",
         body={"prompt": t2i("required_input_missing_upstream", seed=DROP)}),
    dict(name="required_input_missing_on_output",
         description='SaveImage "2" without its images input.',
         body={"prompt": {"1": empty_image(), "2": node("SaveImage", filename_prefix="x")}}),
    dict(name="return_type_mismatch",
         description='KSampler positive linked to CheckpointLoaderSimple output 0 (MODEL).',
         body={"prompt": t2i("return_type_mismatch", positive=["1", 0])}),
    dict(name="value_bigger_than_max",
         description="KSampler steps 10001 (max 10000).",
         body={"prompt": t2i("value_bigger_than_max", steps=10001)}),
    dict(name="value_smaller_than_min_float",
         description="KSampler denoise -0.5 (min 0.0).",
         body={"prompt": t2i("value_smaller_than_min_float", denoise=-0.5)}),
    dict(name="value_smaller_than_min_int",
         description="EmptyImage width 0 (min 1).",
         body={"prompt": simple("value_smaller_than_min_int", width=0)}),
    dict(name="value_not_in_list_long",
         description='KSampler sampler_name "foo" (a list of more than 20 options).',
         body={"prompt": t2i("value_not_in_list_long", sampler_name="foo")}),
    dict(name="value_not_in_list_short",
         description='ImageScale upscale_method "foo" (a short static list, V1 node: input type is the list).',
         body={"prompt": {"1": empty_image(),
                          "2": node("ImageScale", image=["1", 0], upscale_method="foo",
                                    width=32, height=32, crop="disabled"),
                          "3": save(["2", 0], "value_not_in_list_short")}}),
    dict(name="value_not_in_list_combo_v3",
         description='ImageToMask channel "foo" (V3 node: input type "COMBO" with options).',
         body={"prompt": {"1": empty_image(),
                          "2": node("ImageToMask", image=["1", 0], channel="foo"),
                          "3": node("MaskToImage", mask=["2", 0]),
                          "4": save(["3", 0], "value_not_in_list_combo_v3")}}),
    dict(name="value_not_in_list_ckpt",
         description='CheckpointLoaderSimple ckpt_name "missing.safetensors".',
         body={"prompt": with_(t2i("value_not_in_list_ckpt"), "1", ckpt_name="missing.safetensors")}),
    dict(name="invalid_input_type_int",
         description='EmptyImage width "abc".',
         body={"prompt": simple("invalid_input_type_int", width="abc")}),
    dict(name="invalid_input_type_int_float_string",
         description='EmptyImage width "12.5" (a string int() cannot parse).',
         body={"prompt": simple("invalid_input_type_int_float_string", width="12.5")}),
    dict(name="coerce_int_from_float",
         description="EmptyImage width 12.7: valid, coerced to 12 (see history prompt).",
         body={"prompt": simple("coerce_int_from_float", width=12.7)}),
    dict(name="coerce_int_from_string",
         description='EmptyImage width "64": valid, coerced to 64.',
         body={"prompt": simple("coerce_int_from_string", width="64")}),
    dict(name="coerce_string_from_number",
         description="SaveImage filename_prefix 123: valid, coerced to \"123\".",
         body={"prompt": {"1": empty_image(), "2": save(["1", 0], 123)}}),
    dict(name="coerce_bool_from_string",
         description='ImageCompositeMasked resize_source "false" (BOOLEAN): bool("false") is True.',
         body={"prompt": {"1": empty_image(64, 64, 0), "2": empty_image(32, 32, 0xFFFFFF),
                          "3": node("ImageCompositeMasked", destination=["1", 0], source=["2", 0],
                                    x=0, y=0, resize_source="false"),
                          "4": save(["3", 0], "coerce_bool_from_string")}}),
    dict(name="bad_linked_input",
         description='SaveImage images ["1", 0, 5] (a list of length 3).',
         body={"prompt": {"1": empty_image(), "2": save(["1", 0, 5], "bad_linked_input")}}),
    dict(name="link_to_missing_node_from_output",
         description='SaveImage images ["99", 0]; node 99 does not exist.',
         body={"prompt": {"1": empty_image(), "2": save(["99", 0], "x")}}),
    dict(name="link_to_missing_node_inner",
         description='ImageInvert "2" image ["99", 0] feeding SaveImage "3".',
         body={"prompt": {"1": empty_image(), "2": node("ImageInvert", image=["99", 0]),
                          "3": save(["2", 0], "x")}}),
    dict(name="link_output_index_out_of_range",
         description='SaveImage images ["1", 5] where node 1 is EmptyImage (one output).',
         body={"prompt": {"1": empty_image(), "2": save(["1", 5], "x")}}),
    dict(name="load_image_missing_file",
         description='LoadImage image "missing.png" -> SaveImage.',
         body={"prompt": {"1": node("LoadImage", image="missing.png"), "2": save(["1", 0], "x")}}),
    dict(name="load_image_ok",
         description='LoadImage image "scene_32x32.png" (in the input directory) -> SaveImage: valid.',
         body={"prompt": {"1": node("LoadImage", image="scene_32x32.png"),
                          "2": save(["1", 0], "load_image_ok")}}),
    dict(name="partial_targets_non_output",
         description='partial_execution_targets ["1"], node 1 being EmptyImage (not an output).',
         body={"prompt": simple("partial_targets_non_output"), "partial_execution_targets": ["1"]}),
    dict(name="partial_targets_subset",
         description='Two SaveImage outputs "2" and "3"; partial_execution_targets ["3"]: only 3 runs.',
         body={"prompt": {"1": empty_image(), "2": save(["1", 0], "partial_targets_subset_a"),
                          "3": save(["1", 0], "partial_targets_subset_b")},
               "partial_execution_targets": ["3"]}),
    dict(name="one_good_one_bad_output",
         description='Two outputs: SaveImage "2" valid, SaveImage "4" fed by EmptyImage "3" with width 0.',
         body={"prompt": {"1": empty_image(), "2": save(["1", 0], "one_good_one_bad_output"),
                          "3": empty_image(0, 64), "4": save(["3", 0], "bad")}}),
    dict(name="cycle",
         description='ImageInvert "2" <- "3", ImageInvert "3" <- "2", SaveImage "4" <- "3".',
         body={"prompt": {"2": node("ImageInvert", image=["3", 0]),
                          "3": node("ImageInvert", image=["2", 0]),
                          "4": save(["3", 0], "cycle")}}),
    dict(name="cycle_with_good_output",
         description='The cycle of "cycle" plus a valid EmptyImage "5" -> SaveImage "6" branch.',
         body={"prompt": {"2": node("ImageInvert", image=["3", 0]),
                          "3": node("ImageInvert", image=["2", 0]),
                          "4": save(["3", 0], "cycle"),
                          "5": empty_image(), "6": save(["5", 0], "cycle_with_good_output")}}),
    dict(name="execution_error",
         description='Validates, fails at run time: ImageToMask channel "alpha" on a 3-channel EmptyImage.',
         body={"prompt": {"1": empty_image(),
                          "2": node("ImageToMask", image=["1", 0], channel="alpha"),
                          "3": node("MaskToImage", mask=["2", 0]),
                          "4": save(["3", 0], "execution_error")}}),
    dict(name="widget_value_wrapped",
         description='EmptyImage width {"__value__": 48}: unwrapped, valid.',
         body={"prompt": simple("widget_value_wrapped", width={"__value__": 48})}),
    dict(name="widget_list_value",
         description='SaveImage filename_prefix {"__value__": ["a", "b"]}: unwrapped, then str() of the list.',
         body={"prompt": {"1": empty_image(), "2": save(["1", 0], {"__value__": ["a", "b"]})}}),
    dict(name="widget_list_value_int",
         description='EmptyImage width {"__value__": [64]}: unwrapped to a list; int() of it fails.',
         body={"prompt": simple("widget_list_value_int", width={"__value__": [64]})}),
    dict(name="float_link_index",
         description='SaveImage images ["1", 0.0] (a float output index).',
         body={"prompt": {"1": empty_image(), "2": save(["1", 0.0], "float_link_index")}}),
    dict(name="integer_node_id_link",
         description='SaveImage images [1, 0] (an integer node id).',
         body={"prompt": {"1": empty_image(), "2": save([1, 0], "integer_node_id_link")}}),
    dict(name="extra_unknown_input",
         description='EmptyImage with an undeclared input "foo": 1 (valid; ignored).',
         body={"prompt": simple("extra_unknown_input", foo=1)}),
]


# ---------------------------------------------------------------- HTTP
def http(url, method="GET", data=None, timeout=60):
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


def post_json(base, path, obj):
    return http(base + path, "POST", json.dumps(obj).encode())


def wait_history(base, prompt_id, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        st, text = http(f"{base}/history/{prompt_id}")
        if st == 200:
            h = json.loads(text)
            entry = h.get(prompt_id)
            if entry and entry.get("status") and entry["status"].get("completed") is not None:
                return entry
        time.sleep(0.25)
    raise TimeoutError(f"prompt {prompt_id} did not finish in {timeout}s")


def run_case(base, case, timeout):
    post_json(base, "/queue", {"clear": True})
    post_json(base, "/history", {"clear": True})
    rec = {"case": case["name"], "description": case["description"]}
    if "raw_body" in case:
        rec["raw_body"] = case["raw_body"]
        data = case["raw_body"].encode()
    else:
        rec["request"] = case["body"]
        data = json.dumps(case["body"]).encode()
    status, text = http(base + "/prompt", "POST", data)
    rec["status"] = status
    try:
        rec["response"] = json.loads(text)
    except ValueError:
        rec["response_text"] = text
    resp = rec.get("response")
    if status == 200 and isinstance(resp, dict) and "prompt_id" in resp:
        rec["history"] = wait_history(base, resp["prompt_id"], timeout)
    return rec


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--url", default="http://127.0.0.1:8188")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "..", "..", "tests", "fixtures", "validation"))
    ap.add_argument("--timeout", type=float, default=300, help="seconds to wait for one prompt")
    ap.add_argument("--list", action="store_true", help="print the case names and exit")
    ap.add_argument("cases", nargs="*", help="case names (default: all)")
    a = ap.parse_args()
    if a.list:
        print("\n".join(c["name"] for c in CASES))
        return
    base = a.url.rstrip("/")
    names = {c["name"] for c in CASES}
    unknown = [n for n in a.cases if n not in names]
    if unknown:
        sys.exit(f"unknown case(s): {', '.join(unknown)}")
    os.makedirs(a.out, exist_ok=True)
    for case in CASES:
        if a.cases and case["name"] not in a.cases:
            continue
        rec = run_case(base, case, a.timeout)
        path = os.path.join(a.out, case["name"] + ".json")
        with open(path, "w") as f:
            json.dump(rec, f, indent=2, ensure_ascii=False)
            f.write("\n")
        extra = ""
        if "history" in rec:
            extra = " history: " + str(rec["history"]["status"].get("status_str"))
        print(f"{case['name']}: {rec['status']}{extra}")


if __name__ == "__main__":
    main()
