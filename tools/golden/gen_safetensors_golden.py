#!/usr/bin/python3
"""Writes tests/golden/safetensors/foreign-writer.safetensors: a safetensors
file made the way a foreign writer might make it, so that the C reader is
tested against a file it did not write (tests/unit/test_safetensors.c).

Deliberately awkward: keys not in data order, __metadata__ in the middle, a
non-ASCII name as a \\u escape, mixed dtypes so that an F32 tensor starts at
an odd offset, and no header padding. The tensors come from PyTorch so that
their bytes are PyTorch's, not ours.

    /usr/bin/python3 tools/golden/gen_safetensors_golden.py
"""
import json
import os
import struct

import torch

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "golden", "safetensors",
                   "foreign-writer.safetensors")

parts = [("u", "U8", torch.tensor([7, 8, 9], dtype=torch.uint8)),
         ("bl\u00f6ck.y", "F32", torch.tensor([1.5, -2.0])),
         ("idx", "I64", torch.tensor([1, -2, 3], dtype=torch.int64)),
         ("x", "F32", (torch.arange(6, dtype=torch.float32) * 0.25).reshape(3, 2)),
         ("i", "I32", torch.tensor([-7, 40000], dtype=torch.int32))]
entries, blobs, pos = {}, [], 0
for name, dt, t in parts:
    b = t.numpy().tobytes()
    entries[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [pos, pos + len(b)]}
    blobs.append(b)
    pos += len(b)
meta = {"format": "pt", "source": "torch " + torch.__version__}
order = ["x", "__metadata__", "idx", "u", "i", "bl\u00f6ck.y"]
full = {k: (meta if k == "__metadata__" else entries[k]) for k in order}
h = json.dumps(full, ensure_ascii=True).encode()
if len(h) % 8 == 0:
    h += b" "  # make sure the data is not 8-aligned in the file
os.makedirs(os.path.dirname(OUT), exist_ok=True)
with open(OUT, "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
print("wrote", os.path.normpath(OUT))
