#!/usr/bin/python3
"""PyTorch peer of regain's training recipe on Fashion-MNIST (CPU).

    /usr/bin/python3 bench/peers/train_torch.py --model mbv2-tiny --epochs 15 \\
        --batch 128 --lr 0.1 --momentum 0.9 --nesterov --wd 5e-4 \\
        --schedule cosine --warmup-epochs 0 --seed 1 --threads 2 \\
        [--train-limit N] [--json out.json]

Recipe (kept identical to regain's so accuracies compare):
- data: IDX gz files read with gzip + numpy (no torchvision); pixels /255,
  normalized with mean 0.2860, std 0.3530;
- augmentation (train only): random crop 28x28 from the image zero-padded by
  2 on each side (pad value 0 BEFORE normalization), then horizontal flip
  with p = 0.5; each epoch draws a fresh permutation; the last partial batch
  is kept (--drop-last to drop it);
- SGD (momentum, optional Nesterov); weight decay on conv and linear weights
  only -- BN gamma/beta and biases are in a second group with decay 0;
- learning rate set before every step: cosine,
  lr = base * 0.5 * (1 + cos(pi * step / total_steps)), step = 0..total-1;
  with --warmup-epochs W > 0 the first W epochs' steps ramp linearly,
  lr = base * (step + 1) / warmup_steps, and the cosine runs over the rest;
  --schedule constant keeps lr = base;
- softmax cross-entropy, label smoothing 0;
- test top-1 on the 10,000 test images (eval-mode BN) after every epoch.

Output: one line per epoch, then
"final: model=... test_top1=XX.XX% wall_s=...". --json PATH writes the same
plus per-epoch history. Tooling only (PyTorch from Debian python3-torch).
"""

import argparse
import gzip
import json
import math
import os
import platform
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models  # noqa: E402

MEAN, STD = 0.2860, 0.3530
PAD = 2
DEFAULT_DATA = "/usr/share/datasets/fashion-mnist"


# ------------------------------------------------------------------ data ---

def read_idx(path):
    """Read an IDX file (optionally .gz) into a numpy uint8 array."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4:
        raise ValueError(f"{path}: too short for an IDX header")
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file "
                         f"(magic {zero:#06x}, type {dtype:#04x})")
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: {data.size} bytes of data, header says {dims}")
    return data.reshape(dims)


def load_split(data_dir, prefix):
    x = read_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz"))
    y = read_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz"))
    if x.shape[0] != y.shape[0] or x.shape[1:] != (28, 28):
        raise ValueError(f"{prefix}: images {x.shape} vs labels {y.shape}")
    return x, y


def normalize(u8):
    """uint8 [N,H,W] -> float32 [N,1,H,W] normalized."""
    x = torch.from_numpy(np.array(u8, dtype=np.uint8, copy=True)).float().div_(255.0)
    return x.sub_(MEAN).div_(STD).unsqueeze(1)


def augment_batch(padded_u8, idx, gen):
    """Random 28x28 crop of the 2-pixel zero-padded images padded_u8[idx]
    ([N,32,32] uint8 torch tensor) + horizontal flip p=0.5; returns the
    normalized float32 batch [B,1,28,28]."""
    b = idx.numel()
    oy = torch.randint(0, 2 * PAD + 1, (b,), generator=gen)
    ox = torch.randint(0, 2 * PAD + 1, (b,), generator=gen)
    flip = torch.rand(b, generator=gen) < 0.5
    ar = torch.arange(28)
    rows = (oy[:, None] + ar)[:, :, None]                     # [B,28,1]
    cols = ox[:, None] + ar                                   # [B,28]
    cols = torch.where(flip[:, None], cols.flip(1), cols)[:, None, :]
    crop = padded_u8[idx[:, None, None], rows, cols]          # [B,28,28]
    x = crop.float().div_(255.0).sub_(MEAN).div_(STD)
    return x.unsqueeze(1)


# -------------------------------------------------------------- training ---

def lr_at(step, total_steps, warmup_steps, base, schedule):
    if warmup_steps > 0 and step < warmup_steps:
        return base * (step + 1) / warmup_steps
    if schedule == "constant":
        return base
    t = step - warmup_steps
    n = max(1, total_steps - warmup_steps)
    return base * 0.5 * (1.0 + math.cos(math.pi * t / n))


def param_groups(model, wd):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        # conv / linear weights (dim > 1) decay; BN gamma/beta and biases do not
        (decay if p.dim() > 1 else no_decay).append(p)
    return [{"params": decay, "weight_decay": wd},
            {"params": no_decay, "weight_decay": 0.0}]


def evaluate(model, x_test, y_test, batch=1000):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, x_test.shape[0], batch):
            logits = model(x_test[i:i + batch])
            correct += int((logits.argmax(1) == y_test[i:i + batch]).sum())
    return 100.0 * correct / x_test.shape[0]


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="PyTorch peer of regain's Fashion-MNIST training recipe")
    ap.add_argument("--model", default="mbv2-tiny", choices=models.MODEL_NAMES)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--nesterov", action="store_true")
    ap.add_argument("--wd", type=float, default=5e-4)
    ap.add_argument("--schedule", default="cosine", choices=("cosine", "constant"))
    ap.add_argument("--warmup-epochs", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--train-limit", type=int, default=0,
                    help="use only the first N training images (smoke runs)")
    ap.add_argument("--drop-last", action="store_true",
                    help="drop the last partial batch of each epoch")
    ap.add_argument("--data", default=DEFAULT_DATA,
                    help="directory with the Fashion-MNIST IDX .gz files")
    ap.add_argument("--json", default=None, help="write the result as JSON here")
    args = ap.parse_args(argv)

    if args.momentum == 0 and args.nesterov:
        ap.error("--nesterov needs --momentum > 0")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)

    t_wall = time.perf_counter()
    xtr_u8, ytr = load_split(args.data, "train")
    xte_u8, yte = load_split(args.data, "t10k")
    if args.train_limit > 0:
        xtr_u8, ytr = xtr_u8[:args.train_limit], ytr[:args.train_limit]
    padded = torch.from_numpy(np.pad(xtr_u8, ((0, 0), (PAD, PAD), (PAD, PAD))))
    ytr_t = torch.from_numpy(ytr.astype(np.int64))
    x_test = normalize(xte_u8)
    y_test = torch.from_numpy(yte.astype(np.int64))
    n_train = ytr_t.numel()

    model = models.build_model(args.model)
    nparams, macs = models.check_counts(args.model, model)
    model.train()
    opt = torch.optim.SGD(param_groups(model, args.wd), lr=args.lr,
                          momentum=args.momentum, nesterov=args.nesterov)

    if args.drop_last:
        steps_per_epoch = n_train // args.batch
    else:
        steps_per_epoch = (n_train + args.batch - 1) // args.batch
    if steps_per_epoch == 0:
        ap.error("no training steps (train set smaller than one batch with --drop-last)")
    total_steps = steps_per_epoch * args.epochs
    warmup_steps = int(round(args.warmup_epochs * steps_per_epoch))

    print(f"model={args.model} params={nparams} macs={macs} train={n_train} "
          f"test={y_test.numel()} batch={args.batch} steps/epoch={steps_per_epoch} "
          f"threads={args.threads} torch={torch.__version__}", flush=True)

    history = []
    step = 0
    top1 = float("nan")
    for epoch in range(1, args.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        perm = torch.randperm(n_train, generator=gen)
        loss_sum, seen = 0.0, 0
        for bi in range(steps_per_epoch):
            idx = perm[bi * args.batch:(bi + 1) * args.batch]
            xb = augment_batch(padded, idx, gen)
            yb = ytr_t[idx]
            lr = lr_at(step, total_steps, warmup_steps, args.lr, args.schedule)
            for g in opt.param_groups:
                g["lr"] = lr
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += float(loss) * idx.numel()
            seen += idx.numel()
            step += 1
        train_s = time.perf_counter() - t0
        train_loss = loss_sum / max(1, seen)
        t1 = time.perf_counter()
        top1 = evaluate(model, x_test, y_test)
        eval_s = time.perf_counter() - t1
        history.append({"epoch": epoch, "train_loss": train_loss, "test_top1": top1,
                        "epoch_s": train_s, "eval_s": eval_s, "lr_last": lr})
        print(f"epoch {epoch:3d}  train_loss {train_loss:.4f}  test_top1 {top1:6.2f}%  "
              f"epoch_s {train_s:7.1f}  (eval {eval_s:.1f}s)", flush=True)

    wall_s = time.perf_counter() - t_wall
    print(f"final: model={args.model} test_top1={top1:.2f}% wall_s={wall_s:.1f}",
          flush=True)

    if args.json:
        result = {
            "framework": "pytorch", "torch_version": torch.__version__,
            "python": platform.python_version(), "model": args.model,
            "params": nparams, "macs": macs,
            "config": {k: v for k, v in vars(args).items() if k != "json"},
            "n_train": n_train, "n_test": int(y_test.numel()),
            "steps_per_epoch": steps_per_epoch, "total_steps": total_steps,
            "test_top1": top1, "wall_s": wall_s, "history": history,
        }
        d = os.path.dirname(os.path.abspath(args.json))
        os.makedirs(d, exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
