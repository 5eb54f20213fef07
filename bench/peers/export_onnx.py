#!/usr/bin/python3
"""Exports the benchmark networks from PyTorch to ONNX for the ONNX Runtime
peer (bench_ort.js).

    /usr/bin/python3 bench/peers/export_onnx.py [--out bench/out/onnx] [MODEL ...]

Each model (default: all of models.MODEL_NAMES) is built with regain's
initialization, put in eval mode (BN uses running statistics, which the
exporter folds into the convolutions) and written as OUT/MODEL.onnx with
input "input" [batch, 1, 28, 28] float32 and output "logits" [batch, 10];
the batch dimension is dynamic so one file serves batch 1 and batch 256.

torch.onnx.export in PyTorch 1.13 serializes through torch's own C++
exporter; the `onnx` Python package is not needed (Debian has no
python3-onnx in the set this project uses). Weights are random: the speed of
a float network does not depend on their values.
"""

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models  # noqa: E402

# Every op of these networks (Conv, with BN folded in by the exporter in
# eval mode; Clip, Relu, Add, ReduceMean, Gemm) exists in opset 13, which both PyTorch 1.13's exporter
# and ONNX Runtime 1.30 support fully.
OPSET = 13
DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           "..", "out", "onnx")


def export(name, out_dir, seed=1):
    torch.manual_seed(seed)
    model = models.build_model(name).eval()
    path = os.path.join(out_dir, f"{name}.onnx")
    tmp = path + ".tmp"
    with torch.no_grad():
        torch.onnx.export(
            model, torch.zeros(1, 1, 28, 28), tmp,
            input_names=["input"], output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=OPSET, do_constant_folding=True,
            training=torch.onnx.TrainingMode.EVAL)
    # Atomic, so a killed export never leaves a half-written model behind
    # for bench_ort.js to load.
    os.replace(tmp, path)
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="*", default=list(models.MODEL_NAMES),
                    help=f"models to export (default: all of {', '.join(models.MODEL_NAMES)})")
    ap.add_argument("--out", default=DEFAULT_OUT, help="output folder (default bench/out/onnx)")
    args = ap.parse_args()
    for name in args.models:
        if name not in models.MODEL_NAMES:
            ap.error(f"unknown model {name!r}; expected one of {', '.join(models.MODEL_NAMES)}")
    os.makedirs(args.out, exist_ok=True)
    for name in args.models:
        path = export(name, args.out)
        print(f"{name}: {os.path.normpath(path)} ({os.path.getsize(path):,} bytes)", flush=True)


if __name__ == "__main__":
    main()
