#!/usr/bin/python3
"""The int8 peers' models (issue 8): mbv2-tiny quantized after training, with
per-channel int8 weights, calibrated on the first 512 Fashion-MNIST training
images, for PyTorch and for ONNX Runtime.

    /usr/bin/python3 bench/peers/export_int8.py [--out bench/out/int8] [--calib 512]
        [--data /usr/share/datasets/fashion-mnist] [--node node] [--seed 1]

Both start from the same float network: models.build_model (regain's
initialization, seed --seed) with every batch norm folded into its
convolution (eval mode), the form every int8 deployment runs.

- OUT/mbv2-tiny-torch.pt: PyTorch 1.13 FX post-training static quantization
  with the onednn backend (torch.backends.quantized.engine = 'onednn', its
  default qconfig mapping: histogram-calibrated uint8 activations,
  per-channel symmetric int8 weights), traced and frozen with TorchScript.
- OUT/mbv2-tiny.onnx: a static QDQ model written with python3-onnx:
  QuantizeLinear/DequantizeLinear pairs on the input and on the output of
  every convolution (after its ReLU6), add and the fully connected layer;
  uint8 activations (min/max over the calibration images, zero included),
  per-channel symmetric int8 weights, int32 biases (scale s_in * s_w).
  ReLU6 is a Clip before the QuantizeLinear (ONNX Runtime folds it into
  the quantization). The script then has ONNX Runtime optimize the model
  (node ort_optimize.js, sessionOptions.optimizedModelFilePath) and asserts
  that every convolution became a QLinearConv and no float Conv is left.

Tooling only (python3-onnx is a bench dependency, bench/README.md).
"""

import argparse
import os
import subprocess
import sys

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import models  # noqa: E402
from train_torch import DEFAULT_DATA, load_split, normalize  # noqa: E402

MODEL = "mbv2-tiny"


def fold(conv_bn):
    """A ConvBN (eval statistics) as one nn.Conv2d with bias, followed by its
    activation."""
    m = conv_bn
    bn = m.bn
    scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    conv = nn.Conv2d(m.cin, m.cout, m.k, m.stride, m.k // 2, groups=m.groups, bias=True)
    with torch.no_grad():
        conv.weight.copy_(m.weight.detach() * scale[:, None, None, None])
        conv.bias.copy_(bn.bias.detach() - bn.running_mean * scale)
    if m.act == "relu6":
        return nn.Sequential(conv, nn.ReLU6())
    assert m.act is None
    return conv


def folded_model(seed):
    torch.manual_seed(seed)
    model = models.build_model(MODEL).eval()
    for name, mod in list(model.named_modules()):
        for cname, child in list(mod.named_children()):
            if isinstance(child, models.ConvBN):
                setattr(mod, cname, fold(child))
    return model.eval()


def calibration(n, data_dir):
    x, _ = load_split(data_dir, "train")
    return normalize(x[:n])


# --------------------------------------------------------------- PyTorch ---

def export_torch(model, calib, path):
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
    torch.backends.quantized.engine = "onednn"
    prepared = prepare_fx(model, get_default_qconfig_mapping("onednn"), example_inputs=(calib[:1],))
    with torch.no_grad():
        for i in range(0, calib.shape[0], 64):
            prepared(calib[i:i + 64])
    q = convert_fx(prepared)
    with torch.no_grad():
        ts = torch.jit.freeze(torch.jit.trace(q, calib[:1]).eval())
        ref = model(calib[:16])
        got = ts(calib[:16])
    agree = (ref.argmax(1) == got.argmax(1)).float().mean().item()
    torch.jit.save(ts, path)
    print(f"export_int8: {path}: PyTorch int8 (onednn), top-1 agreement with float on 16 images {agree:.2f}",
          file=sys.stderr)


# ------------------------------------------------------------------ ONNX ---

class Ranges:
    """Min/max of named tensors over the calibration images."""

    def __init__(self):
        self.r = {}

    def see(self, name, t):
        lo, hi = float(t.min()), float(t.max())
        a, b = self.r.get(name, (lo, hi))
        self.r[name] = (min(a, lo), max(b, hi))
        return t

    def qparams(self, name):
        lo, hi = self.r[name]
        lo, hi = min(lo, 0.0), max(hi, 0.0)
        scale = (hi - lo) / 255.0 if hi > lo else 1.0
        zp = int(np.clip(round(-lo / scale), 0, 255))
        return scale, zp


def run_float(model, x, rec):
    """mbv2-tiny's forward, recording the tensors the QDQ model quantizes."""
    y = rec.see("input", x)
    y = rec.see("stem", model.stem(y))
    for i in range(1, model.nblocks + 1):
        b = getattr(model, f"b{i}")
        z = y
        if b.expand is not None:
            z = rec.see(f"b{i}.expand", b.expand(z))
        z = rec.see(f"b{i}.dw", b.dw(z))
        z = rec.see(f"b{i}.project", b.project(z))
        y = rec.see(f"b{i}.add", y + z) if b.residual else z
    y = rec.see("head", model.head(y))
    y = rec.see("gap", y.mean(dim=(2, 3)))
    return rec.see("fc", model.fc(y))


def export_onnx(model, calib, path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rec = Ranges()
    with torch.no_grad():
        for i in range(0, calib.shape[0], 64):
            run_float(model, calib[i:i + 64], rec)
    nodes, inits = [], []

    def const(name, arr):
        inits.append(numpy_helper.from_array(arr, name))
        return name

    def qdq(src, name):
        scale, zp = rec.qparams(name)
        s = const(f"{name}.a_scale", np.array(scale, dtype=np.float32))
        z = const(f"{name}.a_zp", np.array(zp, dtype=np.uint8))
        nodes.append(helper.make_node("QuantizeLinear", [src, s, z], [f"{name}.q"]))
        nodes.append(helper.make_node("DequantizeLinear", [f"{name}.q", s, z], [f"{name}.dq"]))
        return f"{name}.dq"

    def weights(name, w, b, in_name):
        """Per-channel int8 weights and int32 bias, each behind a DequantizeLinear."""
        w = w.detach().numpy().astype(np.float64)
        flat = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
        ws = np.where(flat > 0, flat / 127.0, 1.0)
        shape = (-1,) + (1,) * (w.ndim - 1)
        wq = np.clip(np.round(w / ws.reshape(shape)), -127, 127).astype(np.int8)
        in_scale, _ = rec.qparams(in_name)
        bs = in_scale * ws
        bq = np.round(b.detach().numpy().astype(np.float64) / bs).astype(np.int32)
        wn = const(f"{name}.w_q", wq)
        wsn = const(f"{name}.w_scale", ws.astype(np.float32))
        wzn = const(f"{name}.w_zp", np.zeros(w.shape[0], dtype=np.int8))
        nodes.append(helper.make_node("DequantizeLinear", [wn, wsn, wzn], [f"{name}.w"], axis=0))
        bn = const(f"{name}.b_q", bq)
        bsn = const(f"{name}.b_scale", bs.astype(np.float32))
        bzn = const(f"{name}.b_zp", np.zeros(w.shape[0], dtype=np.int32))
        nodes.append(helper.make_node("DequantizeLinear", [bn, bsn, bzn], [f"{name}.b"], axis=0))
        return f"{name}.w", f"{name}.b"

    clip_lo = const("relu6.lo", np.array(0.0, dtype=np.float32))
    clip_hi = const("relu6.hi", np.array(6.0, dtype=np.float32))
    n_conv = [0]

    def conv(src, src_name, mod, name):
        relu6 = isinstance(mod, nn.Sequential)
        c = mod[0] if relu6 else mod
        w, b = weights(name, c.weight, c.bias, src_name)
        out = f"{name}.conv"
        nodes.append(helper.make_node("Conv", [src, w, b], [out], kernel_shape=list(c.kernel_size),
                                      strides=list(c.stride), pads=[c.padding[0]] * 4, group=c.groups))
        if relu6:
            nodes.append(helper.make_node("Clip", [out, clip_lo, clip_hi], [f"{name}.relu6"]))
            out = f"{name}.relu6"
        n_conv[0] += 1
        return qdq(out, name), name

    y, yn = qdq("input", "input"), "input"
    y, yn = conv(y, yn, model.stem, "stem")
    for i in range(1, model.nblocks + 1):
        b = getattr(model, f"b{i}")
        z, zn = y, yn
        if b.expand is not None:
            z, zn = conv(z, zn, b.expand, f"b{i}.expand")
        z, zn = conv(z, zn, b.dw, f"b{i}.dw")
        z, zn = conv(z, zn, b.project, f"b{i}.project")
        if b.residual:
            nodes.append(helper.make_node("Add", [y, z], [f"b{i}.sum"]))
            y, yn = qdq(f"b{i}.sum", f"b{i}.add"), f"b{i}.add"
        else:
            y, yn = z, zn
    y, yn = conv(y, yn, model.head, "head")
    nodes.append(helper.make_node("GlobalAveragePool", [y], ["gap.pool"]))
    nodes.append(helper.make_node("Flatten", ["gap.pool"], ["gap.flat"], axis=1))
    y, yn = qdq("gap.flat", "gap"), "gap"
    w, b = weights("fc", model.fc.weight, model.fc.bias, yn)
    nodes.append(helper.make_node("Gemm", [y, w, b], ["fc.out"], transB=1))
    nodes.append(helper.make_node("Identity", [qdq("fc.out", "fc")], ["logits"]))
    graph = helper.make_graph(
        nodes, "mbv2-tiny-int8-qdq",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, 28, 28])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])], inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="regain-bench")
    m.ir_version = 7
    onnx.checker.check_model(m)
    onnx.save(m, path)
    print(f"export_int8: {path}: QDQ model, {n_conv[0]} convolutions", file=sys.stderr)
    return n_conv[0]


def check_fused(path, n_conv, node):
    """ONNX Runtime's optimized graph: every convolution a QLinearConv."""
    import onnx
    opt = path[:-len(".onnx")] + ".optimized.onnx"
    r = subprocess.run([node, os.path.join(HERE, "ort_optimize.js"), path, opt], stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        sys.exit(f"export_int8: ort_optimize.js failed (exit status {r.returncode})")
    ops = {}
    for n in onnx.load(opt).graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    summary = ", ".join(f"{k} {v}" for k, v in sorted(ops.items()))
    print(f"export_int8: ONNX Runtime's optimized graph: {summary}", file=sys.stderr)
    assert ops.get("QLinearConv", 0) == n_conv, f"{n_conv} convolutions but {ops.get('QLinearConv', 0)} QLinearConv"
    assert ops.get("Conv", 0) == 0 and ops.get("FusedConv", 0) == 0, "a float convolution is left"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(HERE, "..", "out", "int8"))
    ap.add_argument("--calib", type=int, default=512)
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--node", default="node")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(2)
    model = folded_model(args.seed)
    calib = calibration(args.calib, args.data)
    n_conv = export_onnx(model, calib, os.path.join(args.out, f"{MODEL}.onnx"))
    check_fused(os.path.join(args.out, f"{MODEL}.onnx"), n_conv, args.node)
    export_torch(model, calib, os.path.join(args.out, f"{MODEL}-torch.pt"))


if __name__ == "__main__":
    main()
