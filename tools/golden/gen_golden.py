#!/usr/bin/python3
"""Write the PyTorch golden files regain's golden tests compare against.

    /usr/bin/python3 tools/golden/gen_golden.py [--out-dir tests/golden]

For mbv2-tiny and resnet20 (bench/peers/models.py builds them exactly as
docs benchmark-models.md says) this writes tests/golden/<model>.safetensors
holding, for torch.manual_seed(1234) and N=4 images:

  x                       [4,28,28,1]  input, NHWC, standard normal
  y                       [4]          labels 0..9 stored as F32
  <param>                 regain layout (conv OHWI), after init + BN perturbation
  buffer_init.<buffer>    BN running_mean (0) / running_var (1) before the step
  logits                  [4,10]       train mode (BN batch statistics)
  loss                    []           mean softmax cross-entropy
  grad.<param>            regain layout
  grad.x                  [4,28,28,1]  NHWC
  buffer.<buffer>         BN buffers after that one train-mode forward
                          (running_var updated with the UNBIASED variance)
  eval_logits             [4,10]       eval mode, same x, updated buffers

Everything is computed in float64 (model.double()) and stored as F32. The
inputs and parameters are drawn in float32 and widened exactly, so the stored
x / parameters are exactly what was used; only outputs are rounded once.

The safetensors writer is hand-written (no safetensors package): 8-byte
little-endian header length, JSON header padded with spaces to a multiple of
8, then F32 little-endian data, contiguous, in header order. "__metadata__"
holds string values only. Tooling only: needs PyTorch (Debian python3-torch).
"""

import argparse
import collections
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "bench", "peers"))
import models  # noqa: E402

SEED = 1234
N = 4
BN_PERTURB = 0.1   # BN gamma = 1 + 0.1*randn, beta = 0.1*randn
GOLDEN_MODELS = (("mbv2-tiny", "mbv2_tiny"), ("resnet20", "resnet20"))


# ------------------------------------------------------- safetensors I/O ---

def write_safetensors(path, tensors, metadata):
    """tensors: ordered name -> torch tensor (any float dtype; stored F32 LE).
    metadata: dict str -> str. Data follows the header in insertion order."""
    header = collections.OrderedDict()
    header["__metadata__"] = collections.OrderedDict(
        (str(k), str(v)) for k, v in metadata.items())
    blobs = []
    off = 0
    for name, t in tensors.items():
        # (np.ascontiguousarray would turn a 0-d tensor into shape [1])
        a = np.array(t.detach().cpu().to(torch.float32).numpy(), dtype="<f4",
                     order="C", copy=True)
        b = a.tobytes()
        header[name] = collections.OrderedDict(
            [("dtype", "F32"), ("shape", list(a.shape)),
             ("data_offsets", [off, off + len(b)])])
        blobs.append(b)
        off += len(b)
    hj = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hj += b" " * ((-len(hj)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    """Returns (ordered name -> np.float32 array, metadata). F32 only."""
    with open(path, "rb") as f:
        raw = f.read()
    (hlen,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + hlen].decode("utf-8"),
                        object_pairs_hook=collections.OrderedDict)
    meta = header.pop("__metadata__", {})
    data = raw[8 + hlen:]
    out = collections.OrderedDict()
    expect = 0
    for name, h in header.items():
        assert h["dtype"] == "F32", name
        a, b = h["data_offsets"]
        assert a == expect, f"{name}: not contiguous"
        expect = b
        out[name] = np.frombuffer(data[a:b], dtype="<f4").reshape(h["shape"])
    assert expect == len(data), "trailing bytes"
    return out, meta


# ------------------------------------------------------------ generation ---

def generate(model_name):
    """Returns (ordered tensors, metadata) for one model."""
    torch.manual_seed(SEED)
    model = models.build_model(model_name)          # float32 init, RNG draws
    models.check_counts(model_name, model)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.add_(BN_PERTURB * torch.randn_like(m.weight))
                m.bias.add_(BN_PERTURB * torch.randn_like(m.bias))
    x32 = torch.randn(N, 28, 28, 1)                 # NHWC
    y = torch.randint(0, 10, (N,))

    out = collections.OrderedDict()
    out["x"] = x32
    out["y"] = y.to(torch.float32)
    for n, t in models.regain_state(model).items():
        if n in models.regain_buffers(model):
            continue
        out[n] = t
    for n, b in models.regain_buffers(model).items():
        out["buffer_init." + n] = b.detach().clone()

    model = model.double().train()
    x = x32.double().requires_grad_(True)
    logits = model(x.permute(0, 3, 1, 2))           # NHWC -> NCHW
    loss = F.cross_entropy(logits, y)
    model.zero_grad(set_to_none=True)
    loss.backward()

    out["logits"] = logits.detach()
    out["loss"] = loss.detach().reshape(())
    for n, p in models.regain_parameters(model).items():
        out["grad." + n] = models.to_regain_layout(p.grad.detach())
    out["grad.x"] = x.grad.detach()                  # already NHWC
    for n, b in models.regain_buffers(model).items():
        out["buffer." + n] = b.detach().clone()

    model.eval()
    with torch.no_grad():
        out["eval_logits"] = model(x.detach().permute(0, 3, 1, 2))

    nparams, macs = models.count_params_macs(model)
    meta = collections.OrderedDict([
        ("generator", "tools/golden/gen_golden.py"),
        ("torch_version", torch.__version__),
        ("model", model_name),
        ("seed", str(SEED)),
        ("N", str(N)),
        ("params", str(nparams)),
        ("macs_per_image", str(macs)),
        ("precision", "computed in float64 (model.double()), stored as F32; "
                      "x and parameters were drawn in float32, so stored x/params "
                      "are exactly the values used"),
        ("description",
         f"{model_name} (docs/benchmark-models.md) one training-mode step for "
         f"torch.manual_seed({SEED}): x [N,28,28,1] NHWC standard normal; "
         "y labels as F32; parameters in regain layout (conv weights OHWI "
         "[Cout,KH,KW,Cin/groups], linear [out,in]) after kaiming_normal_"
         "(fan_out, relu) conv init, linear N(0,0.01)/0, BN gamma 1+0.1*randn "
         "and beta 0.1*randn; buffer_init.* BN running stats before; logits "
         "and loss (mean softmax cross-entropy) in train mode with BN batch "
         "statistics (eps 1e-5); grad.<param> in regain layout; grad.x NHWC; "
         "buffer.* running stats after one forward (momentum 0.1, running_var "
         "uses the unbiased batch variance); eval_logits in eval mode on the "
         "same x with the updated buffers"),
    ])
    return out, meta


def float32_diagnostic(model_name, tensors):
    """Diagnostic only (nothing of it is stored): rerun the stored x and
    parameters through PyTorch in float32 and report how far a float32
    implementation lands from the float64 golden. Train-mode BN over few
    values and ReLU/ReLU6 kinks make this noticeable: a pre-activation within
    float32 noise (~1e-5) of a kink can take the other side, which changes
    gradients by a few percent. Returns a dict of summary numbers."""
    m = models.build_model(model_name, init=False).train()
    params = models.regain_parameters(m)
    with torch.no_grad():
        for n, p in params.items():
            p.copy_(models.from_regain_layout(tensors[n].detach().float()))
    x = tensors["x"].detach().float().clone().requires_grad_(True)
    y = tensors["y"].long()
    logits = m(x.permute(0, 3, 1, 2))
    loss = F.cross_entropy(logits, y)
    loss.backward()

    def relmax(a, b):
        a, b = a.double(), b.double()
        return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))

    gref = {n: tensors["grad." + n].double() for n in params}
    gref["x"] = tensors["grad.x"].double()
    gscale = max(float(t.abs().max()) for t in gref.values())
    gots = {n: models.to_regain_layout(p.grad).double() for n, p in params.items()}
    gots["x"] = x.grad.double()
    worst_abs, worst_l2, worst_name = 0.0, 0.0, ""
    for n, ref in gref.items():
        d = gots[n] - ref
        worst_abs = max(worst_abs, float(d.abs().max()) / gscale)
        nref = float(ref.norm())
        if nref > 1e-9 * gscale * math.sqrt(ref.numel()):   # skip exact-zero grads
            l2 = float(d.norm()) / nref
            if l2 > worst_l2:
                worst_l2, worst_name = l2, n
    zero = [n for n, ref in gref.items()
            if float(ref.abs().max()) < 1e-9 * gscale]
    return {
        "logits_relmax": relmax(logits.detach(), tensors["logits"]),
        "loss_abs": abs(float(loss) - float(tensors["loss"])),
        "grad_absmax_over_global_scale": worst_abs,
        "grad_worst_l2_rel": worst_l2,
        "grad_worst_l2_rel_name": worst_name,
        "zero_grads": zero,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out-dir", default=os.path.join(ROOT, "tests", "golden"))
    args = ap.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))

    for model_name, stem in GOLDEN_MODELS:
        tensors, meta = generate(model_name)
        path = os.path.join(args.out_dir, stem + ".safetensors")
        write_safetensors(path, tensors, meta)

        back, meta_back = read_safetensors(path)     # round-trip check
        assert list(back) == list(tensors) and meta_back == meta
        for n, t in tensors.items():
            assert np.array_equal(back[n], t.detach().to(torch.float32).numpy()), n

        size = os.path.getsize(path)
        assert size < 3 * 1024 * 1024, f"{path}: {size} bytes (limit 3 MB)"
        ngrad = sum(1 for n in tensors if n.startswith("grad.") and n != "grad.x")
        nbuf = sum(1 for n in tensors if n.startswith("buffer."))
        print(f"{path}: {size:,d} bytes, {len(tensors)} tensors "
              f"({ngrad} params, {nbuf} BN buffers), torch {torch.__version__}")
        print(f"  loss {float(tensors['loss']):.9f}  "
              f"logits[0,:3] {tensors['logits'][0, :3].tolist()}")
        print(f"  eval_logits[0,:3] {tensors['eval_logits'][0, :3].tolist()}  "
              f"|grad.x| max {tensors['grad.x'].abs().max().item():.3e}")
        d = float32_diagnostic(model_name, tensors)
        print(f"  torch float32 vs this golden: logits rel {d['logits_relmax']:.1e}, "
              f"loss abs {d['loss_abs']:.1e}, grads max|err|/max|grad| "
              f"{d['grad_absmax_over_global_scale']:.1e}, worst per-tensor L2 rel "
              f"{d['grad_worst_l2_rel']:.1e} ({d['grad_worst_l2_rel_name']})")
        if d["zero_grads"]:
            print(f"  gradients that are exactly zero in exact arithmetic "
                  f"(|g| < 1e-9 * max|grad|): {', '.join(d['zero_grads'])}")


if __name__ == "__main__":
    main()
