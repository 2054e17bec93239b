"""Writes two files holding the same tiny torchvision-layout ResNet-18 (width 1/16, ImageNet stem):

- moco_checkpoint.pth.tar: what MoCo's main_moco.py saves with torch.save (zip container,
  pickle protocol 2): {"epoch", "arch", "state_dict": {"module.encoder_q.*", "module.encoder_k.*",
  "module.queue", ...}, "optimizer"} with BatchNorm's num_batches_tracked as int64 tensors;
- resnet18_w0.0625.safetensors: the plain torchvision state dict (no prefix).

Needs only the Python standard library (no torch): the torch classes the pickle refers to are
stand-ins with the same module paths, which is all a reader of the file sees. Values come from a
fixed linear congruential generator; running_var[i] = 1 + i / 100 and running_mean[i] = i / 10 so
a test can recognise BatchNorm buffers. Run from this directory: python3 make_fixtures.py
"""

import collections
import json
import pickle
import struct
import sys
import types
import zipfile

# Stand-ins for the torch names a checkpoint's pickle references.
torch = types.ModuleType("torch")
torch_utils = types.ModuleType("torch._utils")
sys.modules["torch"] = torch
sys.modules["torch._utils"] = torch_utils


def _rebuild_tensor_v2(*args):
    raise RuntimeError("stand-in")


_rebuild_tensor_v2.__module__ = "torch._utils"
torch_utils._rebuild_tensor_v2 = _rebuild_tensor_v2
torch._utils = torch_utils


def storage_class(name):
    cls = type(name, (), {})
    cls.__module__ = "torch"
    setattr(torch, name, cls)
    return cls


FloatStorage = storage_class("FloatStorage")
LongStorage = storage_class("LongStorage")


class Storage:
    def __init__(self, key, kind, data):
        self.key, self.kind, self.data = key, kind, data


class Tensor:
    def __init__(self, storage, shape):
        self.storage, self.shape = storage, shape

    def __reduce__(self):
        stride, acc = [], 1
        for dim in reversed(self.shape):
            stride.insert(0, acc)
            acc *= dim
        args = (self.storage, 0, tuple(self.shape), tuple(stride), False, collections.OrderedDict())
        return (_rebuild_tensor_v2, args)


class Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            numel = len(obj.data)
            return ("storage", obj.kind, obj.key, "cpu", numel)
        return None


state = 12345


def lcg():
    global state
    state = (state * 1103515245 + 12345) % (1 << 31)
    return (state / (1 << 31)) - 0.5


def resnet18(base):
    """torchvision's resnet18 state dict layout: (name, shape, kind)."""
    out = [("conv1.weight", [base, 3, 7, 7], "w")]
    out += bn("bn1", base)
    inplanes = base
    for layer, planes in enumerate([base, base * 2, base * 4, base * 8], start=1):
        for block in range(2):
            stride = 2 if layer > 1 and block == 0 else 1
            p = f"layer{layer}.{block}"
            out.append((f"{p}.conv1.weight", [planes, inplanes, 3, 3], "w"))
            out += bn(f"{p}.bn1", planes)
            out.append((f"{p}.conv2.weight", [planes, planes, 3, 3], "w"))
            out += bn(f"{p}.bn2", planes)
            if stride != 1 or inplanes != planes:
                out.append((f"{p}.downsample.0.weight", [planes, inplanes, 1, 1], "w"))
                out += bn(f"{p}.downsample.1", planes)
            inplanes = planes
    return out


def bn(prefix, channels):
    return [
        (f"{prefix}.weight", [channels], "w"),
        (f"{prefix}.bias", [channels], "w"),
        (f"{prefix}.running_mean", [channels], "mean"),
        (f"{prefix}.running_var", [channels], "var"),
        (f"{prefix}.num_batches_tracked", [], "count"),
    ]


def values(shape, kind):
    n = 1
    for d in shape:
        n *= d
    if kind == "mean":
        return [i / 10 for i in range(n)]
    if kind == "var":
        return [1 + i / 100 for i in range(n)]
    if kind == "count":
        return [1000]
    return [lcg() for _ in range(n)]


layout = resnet18(4)
tensors = collections.OrderedDict((name, (shape, kind, values(shape, kind))) for name, shape, kind in layout)

# The MoCo checkpoint: query encoder, plus what a loader must ignore (projection head, key
# encoder, queue).
storages = []


def tensor(shape, kind, data):
    storage = Storage(str(len(storages)), LongStorage if kind == "count" else FloatStorage, data)
    storages.append(storage)
    return Tensor(storage, shape)


state_dict = collections.OrderedDict()
for name, (shape, kind, data) in tensors.items():
    state_dict["module.encoder_q." + name] = tensor(shape, kind, data)
state_dict["module.encoder_q.fc.0.weight"] = tensor([32, 32], "w", values([32, 32], "w"))
state_dict["module.encoder_q.fc.0.bias"] = tensor([32], "w", values([32], "w"))
state_dict["module.encoder_k.conv1.weight"] = tensor([4, 3, 7, 7], "w", values([4, 3, 7, 7], "w"))
state_dict["module.queue"] = tensor([128, 16], "w", values([128, 16], "w"))
checkpoint = {"epoch": 200, "arch": "resnet18", "state_dict": state_dict, "optimizer": {"state": {}, "param_groups": []}}

buffer = __import__("io").BytesIO()
Pickler(buffer, protocol=2).dump(checkpoint)
with zipfile.ZipFile("moco_checkpoint.pth.tar", "w", zipfile.ZIP_STORED) as z:
    z.writestr("archive/data.pkl", buffer.getvalue())
    z.writestr("archive/byteorder", "little")
    z.writestr("archive/version", "3\n")
    for s in storages:
        fmt = "<%dq" % len(s.data) if s.kind is LongStorage else "<%df" % len(s.data)
        packed = struct.pack(fmt, *(int(v) for v in s.data)) if s.kind is LongStorage else struct.pack(fmt, *s.data)
        z.writestr("archive/data/" + s.key, packed)

# The same weights as a plain torchvision SafeTensors file (num_batches_tracked left out, as
# many exports do).
header, blobs, offset = {}, [], 0
for name, (shape, kind, data) in tensors.items():
    if kind == "count":
        continue
    blob = struct.pack("<%df" % len(data), *data)
    header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + len(blob)]}
    blobs.append(blob)
    offset += len(blob)
text = json.dumps(header, separators=(",", ":")).encode()
text += b" " * (-len(text) % 8)
with open("resnet18_w0.0625.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
print(len(tensors), "tensors written")
