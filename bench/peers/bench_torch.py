#!/usr/bin/python3
"""PyTorch peer of `regain bench`: images/s of one training step or one
inference batch of a benchmark network on the CPU.

    /usr/bin/python3 bench/peers/bench_torch.py train|infer MODEL \\
        [--batch 128] [--threads 2] [--steps 10] [--windows 5] [--warmup 3] \\
        [--memory-format contiguous|channels_last] [--default-malloc]

train: one SGD step per iteration (forward, softmax cross-entropy, backward,
optimizer step) in train mode, with the foundation recipe's optimizer (SGD
momentum 0.9, Nesterov, weight decay 5e-4 on conv/linear weights only).
infer: eval mode under torch.inference_mode(). Inputs are one fixed random
[batch, 1, 28, 28] float32 tensor (and random labels), made once, so no data
loading is timed.

Timing: --warmup steps first (untimed; they also let PyTorch's allocator and
oneDNN's primitive cache settle), then --windows timed windows of --steps
steps each. images_per_s and latency_ms are the medians over windows.

Output: progress on stderr; the last stdout line is the JSON object every
benchmark of the project prints:
  {"tool": "pytorch", "work": ..., "model": ..., "batch": ..., "threads": ...,
   "images_per_s": ..., "latency_ms": ..., "windows": ..., "peak_rss_mib": ...}

"At its best" (issue 3): before torch is imported the script re-executes
itself with OMP_NUM_THREADS / OPENBLAS_NUM_THREADS / MKL_NUM_THREADS set to
--threads (so no BLAS pool oversubscribes the cores) and with
GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=4294967295
(without it glibc hands every large activation back to the kernel and the
batch runs lose about a third to page faults); --default-malloc keeps glibc's
defaults. These are read at process start, hence the re-exec.

Tooling only: PyTorch 1.13 from Debian's python3-torch, run with
/usr/bin/python3 (the `python3` on PATH may lack torch).
"""

import argparse
import json
import os
import resource
import statistics
import sys
import time

MALLOC_TUNABLES = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=4294967295"
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
MODEL_NAMES = ("mbv2-tiny", "resnet20", "resnet20-w2")  # checked against models.py below


def parse_args(argv):
    ap = argparse.ArgumentParser(
        description="PyTorch peer of `regain bench` (prints one JSON line last).")
    ap.add_argument("work", choices=("train", "infer"))
    ap.add_argument("model", choices=MODEL_NAMES)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=10, help="steps per timed window")
    ap.add_argument("--windows", type=int, default=5, help="timed windows")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    ap.add_argument("--memory-format", choices=("contiguous", "channels_last"),
                    default="contiguous",
                    help="layout of the input and the weights (default contiguous, NCHW)")
    ap.add_argument("--default-malloc", action="store_true",
                    help="do not set the glibc malloc tunables")
    ap.add_argument("--seed", type=int, default=1)
    return check_counts(ap, ap.parse_args(argv))


def check_counts(ap, args):
    """Rejects batch, threads, steps and windows below 1 and warmup below 0."""
    for name in ("batch", "threads", "steps", "windows"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    if args.warmup < 0:
        ap.error(f"--warmup must be at least 0, got {args.warmup}")
    return args


def wanted_env(args):
    env = {v: str(args.threads) for v in THREAD_VARS}
    if not args.default_malloc:
        env["GLIBC_TUNABLES"] = MALLOC_TUNABLES
    return env


def ensure_env(args):
    """Re-exec with the thread and malloc settings unless they are already in
    force. The marker stops a loop should exec not take them for any reason."""
    want = wanted_env(args)
    if all(os.environ.get(k) == v for k, v in want.items()):
        return
    if os.environ.get("REGAIN_BENCH_TORCH_REEXEC") == "1":
        sys.exit("bench_torch.py: the environment settings did not take after re-exec: "
                 + ", ".join(f"{k}={os.environ.get(k)!r} (want {v!r})"
                             for k, v in want.items() if os.environ.get(k) != v))
    env = dict(os.environ, REGAIN_BENCH_TORCH_REEXEC="1", **want)
    os.execve(sys.executable, [sys.executable, os.path.abspath(__file__)] + sys.argv[1:], env)


def log(msg):
    print(f"bench_torch: {msg}", file=sys.stderr, flush=True)


def time_windows(step, args, work, log):
    """Runs step() args.warmup times, then args.windows windows of
    args.steps steps each, and prints compare.py's JSON line: the median
    window's images/s and ms per batch, and the peak RSS."""
    for _ in range(args.warmup):
        step()
    rates, lat = [], []
    for w in range(args.windows):
        t0 = time.perf_counter()
        for _ in range(args.steps):
            step()
        dt = time.perf_counter() - t0
        rates.append(args.steps * args.batch / dt)
        lat.append(1000.0 * dt / args.steps)
        log(f"window {w + 1}/{args.windows}: {rates[-1]:.1f} images/s, {lat[-1]:.3f} ms/batch")
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({
        "tool": "pytorch", "work": work, "model": args.model,
        "batch": args.batch, "threads": args.threads,
        "images_per_s": round(statistics.median(rates), 3),
        "latency_ms": round(statistics.median(lat), 4),
        "windows": args.windows,
        "peak_rss_mib": round(peak_kib / 1024.0, 1),
    }), flush=True)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    ensure_env(args)

    import torch
    import torch.nn.functional as F
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import models
    from train_torch import param_groups
    assert tuple(models.MODEL_NAMES) == MODEL_NAMES, "bench_torch.MODEL_NAMES is stale"

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    fmt = torch.channels_last if args.memory_format == "channels_last" else torch.contiguous_format
    model = models.build_model(args.model).to(memory_format=fmt)
    x = torch.randn(args.batch, 1, 28, 28).contiguous(memory_format=fmt)
    y = torch.randint(0, 10, (args.batch,))

    if args.work == "train":
        model.train()
        opt = torch.optim.SGD(param_groups(model, 5e-4), lr=0.01, momentum=0.9,
                              nesterov=True)

        def step():
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
    else:
        model.eval()

        def step():
            with torch.inference_mode():
                model(x)

    log(f"{args.work} {args.model} batch {args.batch} threads {args.threads} "
        f"({args.memory_format}, torch {torch.__version__}): "
        f"{args.warmup} warm-up steps, {args.windows} windows of {args.steps}")
    time_windows(step, args, args.work, log)


if __name__ == "__main__":
    main()
