#!/usr/bin/python3
"""Writes the pickle checkpoint fixtures in tests/fixtures/pickles/ (run with Debian's
python3-torch: /usr/bin/python3 tools/make_pickle_fixtures.py).

The files come from an independent writer (torch.save itself), in both of its formats:
  zip_state_dict.ckpt     torch.save zip format, {"state_dict": OrderedDict, "global_step": 7}
  legacy_state_dict.ckpt  the same object, _use_new_zipfile_serialization=False
  zip64_state_dict.ckpt   zip_state_dict.ckpt rewritten with zip64 records and unaligned entries
  zip_flat.pt             a plain dict of tensors, nested dicts and a Parameter (zip format)
  legacy_flat.pt          the same, legacy format
  embedding.pt            a textual-inversion embedding as A1111 writes it (string_to_param)
  evil_posix_system.pkl   a legacy-looking file whose first pickle is GLOBAL posix system + REDUCE
  evil_zip.pt             a torch zip whose data.pkl calls builtins.eval
  evil_nested.ckpt        a legacy file whose main pickle builds a dict value with os.system
and expected.json: for every file, the tensors torch.load returns after ComfyUI's
load_torch_file unwrapping (names flattened with "."), each with dtype, shape and its values
in C order as floats.
"""
import collections
import io
import json
import os
import pickle
import struct
import zipfile

import torch

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "pickles")
os.makedirs(HERE, exist_ok=True)


def state_dict():
    g = torch.Generator().manual_seed(1234)
    base = torch.randn(4, 6, generator=g)
    sd = collections.OrderedDict()
    sd["model.diffusion_model.input_blocks.0.0.weight"] = torch.randn(3, 2, 3, 3, generator=g)
    sd["model.diffusion_model.input_blocks.0.0.bias"] = torch.randn(3, generator=g).half()
    sd["first_stage_model.encoder.conv_in.weight"] = torch.randn(2, 5, generator=g).bfloat16()
    sd["transposed"] = base.t()                 # non-contiguous: stride (1, 6)
    sd["row_view"] = base[2]                    # shares base's storage at offset 12
    sd["base"] = base
    sd["ids"] = torch.arange(5, dtype=torch.int64) * 3 - 4
    sd["scalar"] = torch.tensor(2.5, dtype=torch.float64)
    sd["mask"] = torch.tensor([True, False, True])
    sd["bytes"] = torch.tensor([0, 7, 255], dtype=torch.uint8)
    sd["i32"] = torch.tensor([-2, 40000], dtype=torch.int32)
    return sd


def flat_dict():
    g = torch.Generator().manual_seed(99)
    return {
        "alpha": torch.randn(2, 3, generator=g),
        "sub": {"w": torch.randn(3, generator=g).half(), "deeper": {"b": torch.ones(2, dtype=torch.int16)}},
        "param": torch.nn.Parameter(torch.randn(2, 2, generator=g)),
        "name": "not a tensor",
        "count": 3,
    }


def embedding():
    g = torch.Generator().manual_seed(5)
    return {"string_to_token": {"*": 265}, "string_to_param": {"*": torch.randn(2, 8, generator=g)},
            "name": "tiny-embed", "step": 100, "sd_checkpoint": "abcdef", "sd_checkpoint_name": "x"}


def comfy_unwrap(obj):
    # comfy/utils.py load_torch_file, for the pickle branch
    if "state_dict" in obj:
        return obj["state_dict"]
    if len(obj) == 1:
        key = list(obj.keys())[0]
        if isinstance(obj[key], dict):
            return obj[key]
    return obj


def flatten(obj, prefix, out):
    for k, v in obj.items():
        name = prefix + str(k)
        if isinstance(v, torch.Tensor):
            t = v.detach()
            out[name] = {"dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape),
                         "values": [float(x) for x in t.reshape(-1).to(torch.float64).tolist()]}
        elif isinstance(v, dict):
            flatten(v, name + ".", out)


expected = {}


def save(name, obj, zip_format):
    path = os.path.join(HERE, name)
    torch.save(obj, path, _use_new_zipfile_serialization=zip_format)
    loaded = torch.load(path)  # read back by torch itself: what the expectations describe
    out = {}
    flatten(comfy_unwrap(loaded), "", out)
    expected[name] = out


save("zip_state_dict.ckpt", {"state_dict": state_dict(), "global_step": 7}, True)
save("legacy_state_dict.ckpt", {"state_dict": state_dict(), "global_step": 7}, False)
save("zip_flat.pt", flat_dict(), True)
save("legacy_flat.pt", flat_dict(), False)
save("embedding.pt", embedding(), True)

# The same archive rewritten by Python's zipfile with its zip64 threshold lowered to 64 bytes:
# zip64 extra fields and end records (torch writes them past 4 GiB), and entries that are not
# aligned to their dtype (torch pads to 64 bytes; zipfile does not), so readers must copy.
src = zipfile.ZipFile(os.path.join(HERE, "zip_state_dict.ckpt"))
saved_limit = zipfile.ZIP64_LIMIT
zipfile.ZIP64_LIMIT = 64
with zipfile.ZipFile(os.path.join(HERE, "zip64_state_dict.ckpt"), "w", zipfile.ZIP_STORED) as z:
    z.writestr("odd-name!", b"x")  # shifts every later entry by an odd number of bytes
    for info in src.infolist():
        z.writestr(info.filename.replace("zip_state_dict/", "zip64_state_dict/"), src.read(info.filename))
zipfile.ZIP64_LIMIT = saved_limit
expected["zip64_state_dict.ckpt"] = expected["zip_state_dict.ckpt"]

# A pickle that runs a shell command when unpickled: PROTO 2, GLOBAL 'posix system',
# the argument tuple, REDUCE, STOP. Made from opcodes, never unpickled here.
def ustr(text):  # BINUNICODE: length-prefixed UTF-8
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


evil = b"\x80\x02" + b"cposix\nsystem\n" + ustr("touch /tmp/comfy_pwned_1") + b"\x85" + b"R" + b"."
with open(os.path.join(HERE, "evil_posix_system.pkl"), "wb") as f:
    f.write(evil)

# A torch zip archive (stored entries, as torch.save writes) whose data.pkl calls builtins.eval.
payload = b"__import__('os').system('touch /tmp/comfy_pwned_2')"
evil_pkl = b"\x80\x02" + b"cbuiltins\neval\n" + ustr(payload.decode()) + b"\x85R."
with zipfile.ZipFile(os.path.join(HERE, "evil_zip.pt"), "w", zipfile.ZIP_STORED) as z:
    z.writestr("evil_zip/data.pkl", evil_pkl)
    z.writestr("evil_zip/version", "3\n")

# Legacy format: valid magic number, protocol and sys_info pickles, then a main pickle whose
# dict value is os.system(...) built with REDUCE.
buf = io.BytesIO()
pickle.dump(0x1950a86a20f9469cfc6c, buf, protocol=2)
pickle.dump(1001, buf, protocol=2)
pickle.dump({"protocol_version": 1001, "little_endian": True,
             "type_sizes": {"short": 2, "int": 4, "long": 4}}, buf, protocol=2)
buf.write(b"\x80\x02}" + ustr("a") + b"cos\nsystem\n" + ustr("touch /tmp/comfy_pwned_3") + b"\x85Rs.")
with open(os.path.join(HERE, "evil_nested.ckpt"), "wb") as f:
    f.write(buf.getvalue())

with open(os.path.join(HERE, "expected.json"), "w") as f:
    json.dump(expected, f, indent=1, sort_keys=True)
    f.write("\n")
print("wrote", HERE)
