#!/usr/bin/python3
"""Golden vectors for regain's int8 scheme, observers and fake quantization,
computed by PyTorch (torch.ao.quantization), written to
tests/golden/quant/quant_goldens.safetensors.

    /usr/bin/python3 scripts/golden/quant_goldens.py

Deterministic (fixed seeds): the file comes out byte-identical. Where
PyTorch's semantics differ from regain's (PyTorch rounds half to even and
multiplies by 1/scale; regain rounds half away from zero and divides, as
TFLite), the inputs are nudged away from rounding ties, so that both must
give the same integers. See tests/golden/quant/README.md.
"""
import collections
import json
import os
import struct
import sys

import numpy as np
import torch
from torch.ao.quantization.observer import (MinMaxObserver, MovingAverageMinMaxObserver,
                                            PerChannelMinMaxObserver)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "golden", "quant",
                   "quant_goldens.safetensors")


def save(path, tensors, meta):
    """Safetensors with F32 and I32 tensors (little-endian, in insertion order)."""
    header = collections.OrderedDict()
    header["__metadata__"] = collections.OrderedDict((k, str(v)) for k, v in meta.items())
    data = []
    off = 0
    for name, t in tensors.items():
        if t.dtype in (torch.int32, torch.int64, torch.int8):
            a, dt = np.asarray(t.to(torch.int32).numpy(), dtype="<i4"), "I32"
        else:
            a, dt = np.asarray(t.to(torch.float32).numpy(), dtype="<f4"), "F32"
        b = np.ascontiguousarray(a).tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        data.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((-len(h)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in data:
            f.write(b)


def away_from_ties(x, scale, keep):
    """Moves values whose x/scale lies within 1e-3 of a half-integer by a
    third of a step (never the entries in keep: the extremes)."""
    x = x.clone()
    for _ in range(5):
        u = (x.double() / float(scale))
        near = (u - torch.floor(u) - 0.5).abs() < 1e-3
        near[keep] = False
        if not near.any():
            break
        x[near] += float(scale) / 3
    return x


def per_tensor_case(t, name, x):
    obs = MinMaxObserver(dtype=torch.qint8, qscheme=torch.per_tensor_affine, quant_min=-128, quant_max=127)
    obs(x)
    scale, zp = obs.calculate_qparams()
    keep = torch.tensor([int(torch.argmin(x)), int(torch.argmax(x))])
    x = away_from_ties(x, scale, keep)
    obs = MinMaxObserver(dtype=torch.qint8, qscheme=torch.per_tensor_affine, quant_min=-128, quant_max=127)
    obs(x)
    scale2, zp2 = obs.calculate_qparams()
    assert float(scale2) == float(scale) and int(zp2) == int(zp)
    q = torch.quantize_per_tensor(x, float(scale), int(zp), torch.qint8)
    t[name + ".x"] = x
    t[name + ".min_max"] = torch.stack([obs.min_val, obs.max_val])
    t[name + ".scale"] = scale.reshape(1)
    t[name + ".zero_point"] = zp.reshape(1).to(torch.int32)
    t[name + ".q"] = q.int_repr().to(torch.int32)
    t[name + ".dq"] = q.dequantize()


def entropy_threshold(x, bins=2048, num_bits=8):
    """TensorRT-style KL calibration as docs/quantization.md states it, on
    one batch: histogram of |x| without exact zeros on bins [j w, (j+1) w),
    w = max|x| / (bins - 1); P = the first i bins with the tail added to the
    last; Q = them merged into `levels` groups, spread over P's non-empty
    bins; both normalized and smoothed (1e-4 on empty bins); the i of least
    KL(P || Q) (first on ties); threshold i * w, at most max|x|. Written from
    the description, independently of observer.c."""
    x = x.double().numpy()
    amax = max(abs(float(np.float32(x.min()))), abs(float(np.float32(x.max()))))
    w = amax / (bins - 1)
    a = np.abs(x[x != 0.0])
    idx = np.clip(np.floor(a / w).astype(np.int64), 0, bins - 1)
    h = np.bincount(idx, minlength=bins).astype(np.float64)
    levels = 2 ** (num_bits - 1) if x.min() < 0 else 2 ** num_bits
    top = int(np.nonzero(h)[0].max()) + 1
    total = h.sum()
    eps = 1e-4

    def smooth(d):
        d = d / d.sum()
        zeros = int((d == 0).sum())
        if zeros == 0 or zeros == len(d):
            return d
        take = eps * zeros / (len(d) - zeros)
        return np.where(d == 0, eps, np.maximum(d - take, eps * 1e-3))

    best, best_i = np.inf, top
    for i in range(levels, top + 1):
        p = h[:i].copy()
        p[i - 1] += total - h[:i].sum()
        q = np.zeros(i)
        for g in range(levels):
            b0, b1 = g * i // levels, (g + 1) * i // levels
            nz = int((p[b0:b1] != 0).sum())
            if nz:
                q[b0:b1] = np.where(p[b0:b1] != 0, h[b0:b1].sum() / nz, 0.0)
        if h[:i].sum() <= 0:
            continue
        p, q = smooth(p), smooth(q)
        kl = np.cumsum(p * np.log(p / q))[-1]
        if kl < best:
            best, best_i = kl, i
    return min(float(np.float32(best_i * w)), amax)


def main():
    torch.manual_seed(20261129)
    t = collections.OrderedDict()
    # per-tensor affine activations
    per_tensor_case(t, "pt.mixed", torch.randn(1000) * 2.0 + 0.3)
    per_tensor_case(t, "pt.relu6", torch.clamp(torch.randn(1000) * 3.0, 0.0, 6.0))
    per_tensor_case(t, "pt.negative", -torch.rand(1000) * 5.0 - 0.5)
    per_tensor_case(t, "pt.offset", torch.rand(1000) * 0.7 + 2.0)

    # per-channel symmetric weights, OHWI [8, 3, 3, 4], channel 0 tiny
    w = torch.randn(8, 3, 3, 4) * torch.linspace(0.01, 1.0, 8).reshape(8, 1, 1, 1)
    obs = PerChannelMinMaxObserver(ch_axis=0, dtype=torch.qint8, qscheme=torch.per_channel_symmetric,
                                   quant_min=-127, quant_max=127)
    obs(w)
    scales, zps = obs.calculate_qparams()
    for c in range(8):
        keep = torch.tensor([int(torch.argmax(w[c].abs()))])
        w[c] = away_from_ties(w[c].reshape(-1), scales[c], keep).reshape(3, 3, 4)
    obs = PerChannelMinMaxObserver(ch_axis=0, dtype=torch.qint8, qscheme=torch.per_channel_symmetric,
                                   quant_min=-127, quant_max=127)
    obs(w)
    scales2, zps = obs.calculate_qparams()
    assert torch.equal(scales, scales2)
    qw = torch.quantize_per_channel(w, scales.double(), zps.long(), 0, torch.qint8)
    t["pc.w"] = w.clone()
    t["pc.scales"] = scales.float()
    t["pc.q"] = qw.int_repr().to(torch.int32)

    # moving-average min/max over 6 batches of growing spread
    obs = MovingAverageMinMaxObserver(averaging_constant=0.1, dtype=torch.qint8,
                                      qscheme=torch.per_tensor_affine, quant_min=-128, quant_max=127)
    batches, ranges = [], []
    for i in range(6):
        b = torch.randn(500) * (1.0 + i) + 0.2 * i
        obs(b)
        batches.append(b)
        ranges.append(torch.stack([obs.min_val.clone(), obs.max_val.clone()]))
    scale, zp = obs.calculate_qparams()
    t["ma.x"] = torch.stack(batches)
    t["ma.ranges"] = torch.stack(ranges)
    t["ma.scale"] = scale.reshape(1)
    t["ma.zero_point"] = zp.reshape(1).to(torch.int32)

    # fake quantization: forward, straight-through and LSQ gradients
    scale, zp, qmin, qmax = 0.05, -7, -128, 127
    x = away_from_ties(torch.randn(2000) * 4.0, scale, torch.tensor([], dtype=torch.long))
    dy = torch.randn(2000)
    xr = x.clone().requires_grad_(True)
    y = torch.fake_quantize_per_tensor_affine(xr, scale, zp, qmin, qmax)
    (y * dy).sum().backward()
    t["fq.x"] = x
    t["fq.dy"] = dy
    t["fq.params"] = torch.tensor([scale])
    t["fq.zero_point"] = torch.tensor([zp], dtype=torch.int32)
    t["fq.y"] = y.detach()
    t["fq.dx"] = xr.grad
    # LSQ with a non-negative zero point: PyTorch 1.13's learnable backward
    # takes the zero point as (int64)(zp + 0.5), which truncates a negative
    # one toward zero (-7 becomes -6) and shifts its clipping mask
    g = 1.0 / np.sqrt(2000 * qmax)
    lzp = 9
    xr = x.clone().requires_grad_(True)
    s_t = torch.tensor([scale], requires_grad=True)
    z_t = torch.tensor([float(lzp)], requires_grad=True)
    y = torch._fake_quantize_learnable_per_tensor_affine(xr, s_t, z_t, qmin, qmax, g)
    (y * dy).sum().backward()
    t["lsq.zero_point"] = torch.tensor([lzp], dtype=torch.int32)
    t["lsq.y"] = y.detach()
    t["lsq.dx"] = xr.grad
    t["lsq.dscale"] = s_t.grad.reshape(1)
    t["lsq.grad_factor"] = torch.tensor([g], dtype=torch.float32)

    # LSQ per channel on the weights above (symmetric, zero point 0, [-127, 127])
    dyw = torch.randn_like(w)
    ws = (scales * 0.8).float()  # a step below min/max, so that some weights clip
    for c in range(8):
        w[c] = away_from_ties(w[c].reshape(-1), ws[c], torch.tensor([], dtype=torch.long)).reshape(3, 3, 4)
    wr = w.clone().requires_grad_(True)
    s_t = ws.clone().requires_grad_(True)
    z_t = torch.zeros(8, requires_grad=True)
    gw = 1.0 / np.sqrt(36 * 127)
    y = torch._fake_quantize_learnable_per_channel_affine(wr, s_t, z_t, 0, -127, 127, gw)
    (y * dyw).sum().backward()
    t["lsqc.w"] = w.clone()
    t["lsqc.dy"] = dyw
    t["lsqc.scales"] = ws
    t["lsqc.y"] = y.detach()
    t["lsqc.dw"] = wr.grad
    t["lsqc.dscales"] = s_t.grad
    t["lsqc.grad_factor"] = torch.tensor([gw], dtype=torch.float32)

    # entropy (KL) thresholds from an independent implementation
    ent = []
    for name, x in [("normal", torch.cat([torch.randn(20000), torch.tensor([40.0, -25.0])])),
                    ("relu", torch.cat([torch.clamp(torch.randn(20000), min=0.0), torch.tensor([30.0])])),
                    ("laplace", torch.distributions.Laplace(0.0, 1.0).sample((20000,)))]:
        t["ent." + name + ".x"] = x
        ent.append(entropy_threshold(x))
    t["ent.thresholds"] = torch.tensor(ent, dtype=torch.float32)

    meta = {"generator": "scripts/golden/quant_goldens.py", "torch_version": torch.__version__,
            "python": sys.version.split()[0], "seed": "20261129"}
    save(os.path.normpath(OUT), t, meta)
    print("wrote", os.path.normpath(OUT), len(t), "tensors")


if __name__ == "__main__":
    main()
