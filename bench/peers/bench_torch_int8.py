#!/usr/bin/python3
"""PyTorch int8 peer of `regain bench int8` (issue 8): images/s of the
post-training quantized mbv2-tiny (onednn backend) that export_int8.py
writes, on one fixed random float batch (the model quantizes its input and
dequantizes its logits, as regain's float entry does).

    /usr/bin/python3 bench/peers/bench_torch_int8.py int8 mbv2-tiny [--batch 1] [--threads 1] \\
        [--steps 1000] [--windows 5] [--warmup 250] [--model-dir bench/out/int8]

Timing, environment (threads, glibc malloc tunables, re-exec) and the JSON
result line are bench_torch.py's; the line says tool "pytorch", work "int8".
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_torch import check_counts, time_windows, wanted_env  # noqa: E402


def ensure_env(args):
    """bench_torch.py's re-exec with its thread and malloc settings, for
    this script."""
    want = wanted_env(args)
    if all(os.environ.get(k) == v for k, v in want.items()):
        return
    if os.environ.get("REGAIN_BENCH_TORCH_REEXEC") == "1":
        sys.exit("bench_torch_int8.py: the environment settings did not take after re-exec")
    env = dict(os.environ, REGAIN_BENCH_TORCH_REEXEC="1", **want)
    os.execve(sys.executable, [sys.executable, os.path.abspath(__file__)] + sys.argv[1:], env)


def parse_args(argv):
    ap = argparse.ArgumentParser(description="PyTorch int8 peer of `regain bench int8` (prints one JSON line last).")
    ap.add_argument("work", choices=("int8",))
    ap.add_argument("model", choices=("mbv2-tiny",))
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=100, help="steps per timed window")
    ap.add_argument("--windows", type=int, default=5, help="timed windows")
    ap.add_argument("--warmup", type=int, default=20, help="untimed steps first")
    ap.add_argument("--model-dir", default=os.path.join(HERE, "..", "out", "int8"))
    ap.add_argument("--default-malloc", action="store_true", help="do not set the glibc malloc tunables")
    ap.add_argument("--seed", type=int, default=1)
    return check_counts(ap, ap.parse_args(argv))


def log(msg):
    print(f"bench_torch_int8: {msg}", file=sys.stderr, flush=True)


def main():
    args = parse_args(sys.argv[1:])
    ensure_env(args)
    import torch
    path = os.path.join(args.model_dir, f"{args.model}-torch.pt")
    if not os.path.exists(path):
        sys.exit(f"bench_torch_int8: {path}: no such model; run /usr/bin/python3 bench/peers/export_int8.py")
    torch.backends.quantized.engine = "onednn"
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = torch.jit.load(path).eval()
    x = torch.randn(args.batch, 1, 28, 28)

    def step():
        with torch.inference_mode():
            model(x)

    log(f"int8 {args.model} batch {args.batch} threads {args.threads} (torch {torch.__version__}, "
        f"engine {torch.backends.quantized.engine}): {args.warmup} warm-up steps, {args.windows} windows of {args.steps}")
    time_windows(step, args, "int8", log)


if __name__ == "__main__":
    main()
