#!/usr/bin/python3
"""Golden outputs of torchvision's image augmentations, for
tests/golden/test_augment_golden.c.

Applies each geometric and photometric op of torchvision's autoaugment module
(_apply_op, the function RandAugment, TrivialAugmentWide and AutoAugment
call) with FIXED magnitudes taken from the policies' own magnitude tables, plus
flips and the bilinear resized crop, to small fixed images (grayscale 28x28
and RGB 16x16, made here from a fixed integer recipe), and writes:

  tests/golden/augment/ops.txt         one line per image and per case
  tests/golden/augment/magnitudes.txt  the magnitude tables of the three spaces
  tests/golden/augment/autoaugment.txt AutoAugment's three published policy tables

Run with Debian's python3-torchvision (0.14.1) and python3-torch (1.13):
    /usr/bin/python3 tools/golden/gen_augment_golden.py
The output is deterministic (no random draws).
"""
import os
import sys

import torch
import torchvision
from torchvision.transforms import InterpolationMode
from torchvision.transforms import autoaugment as AA
from torchvision.transforms import functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "golden", "augment")


def make_image(h, w, c, salt):
    """A smooth gradient plus a blob plus a fixed pseudo-random texture, in
    roughly [16, 220] so autocontrast and equalize have work to do."""
    x = 12345 + salt
    img = torch.zeros((c, h, w), dtype=torch.uint8)
    for k in range(c):
        for i in range(h):
            for j in range(w):
                x = (1103515245 * x + 12345) % (1 << 31)
                noise = (x >> 16) % 48
                base = 16 + (i * 7 + j * 5 + k * 40) % 120
                blob = 50 if (i - h // 2) ** 2 + (j - w // 3) ** 2 < (h // 4) ** 2 else 0
                img[k, i, j] = min(255, base + noise + blob)
    return img


def hexbytes(t):
    """HWC bytes in hex."""
    return bytes(t.permute(1, 2, 0).contiguous().view(-1).tolist()).hex()


def main():
    assert torchvision.__version__.startswith("0.14"), torchvision.__version__
    os.makedirs(OUT, exist_ok=True)
    images = [make_image(28, 28, 1, 0), make_image(16, 16, 3, 7)]

    # Magnitudes from the spaces' own tables (float32 values, as the policies
    # pass them): RandAugment at bins 5, 9, 30; TrivialAugmentWide at 30;
    # AutoAugment's 10-bin table at 9.
    ra = AA.RandAugment()
    ta = AA.TrivialAugmentWide()
    aa = AA.AutoAugment()
    cases = []
    for idx, img in enumerate(images):
        h, w = img.shape[1], img.shape[2]
        spaces = [("ra", ra._augmentation_space(31, (h, w)), [5, 9, 30]),
                  ("ta", ta._augmentation_space(31), [30]),
                  ("aa", aa._augmentation_space(10, (h, w)), [9])]
        for tag, space, bins in spaces:
            for name, (mags, signed) in space.items():
                if mags.ndim == 0:
                    cases.append((name, idx, 0.0, None))
                    continue
                for b in bins:
                    m = float(mags[b].item())
                    cases.append((name, idx, m, None))
                    if signed:
                        cases.append((name, idx, -m, None))
        # Geometric ops with a fill value (RandAugment's fill argument).
        for name, m in [("Rotate", 23.0), ("ShearX", -0.21), ("TranslateY", 5.0)]:
            cases.append((name, idx, float(torch.tensor(m).item()), 128))
        cases.append(("Invert", idx, 0.0, None))

    lines = ["# torchvision %s, torch %s; tools/golden/gen_augment_golden.py" % (torchvision.__version__, torch.__version__)]
    for idx, img in enumerate(images):
        lines.append("image %d %d %d %d %s" % (idx, img.shape[1], img.shape[2], img.shape[0], hexbytes(img)))
    seen = set()
    for name, idx, m, fill in cases:
        key = (name, idx, m, fill)
        if key in seen:
            continue
        seen.add(key)
        img = images[idx]
        f = None if fill is None else [float(fill)] * img.shape[0]
        out = AA._apply_op(img, name, m, interpolation=InterpolationMode.NEAREST, fill=f)
        lines.append("op %s %d %.9g %d %s" % (name, idx, m, 0 if fill is None else fill, hexbytes(out)))
    # Flips and bilinear resized crops (box top, left, height, width).
    for idx, img in enumerate(images):
        h, w = img.shape[1], img.shape[2]
        lines.append("hflip %d %s" % (idx, hexbytes(F.hflip(img))))
        lines.append("vflip %d %s" % (idx, hexbytes(F.vflip(img))))
        for box in [(0, 0, h, w), (2, 3, h // 2, w // 2 + 1), (1, 0, h - 3, w), (h // 3, w // 4, 5, 7), (0, 1, 3, w - 1)]:
            out = F.resized_crop(img, box[0], box[1], box[2], box[3], [h, w],
                                 interpolation=InterpolationMode.BILINEAR, antialias=False)
            lines.append("resizedcrop %d %d %d %d %d %s" % ((idx,) + box + (hexbytes(out),)))
    with open(os.path.join(OUT, "ops.txt"), "w") as fh:
        fh.write("\n".join(lines) + "\n")

    # Magnitude tables: space, op, bins, h, w, then one value per bin.
    mlines = ["# torchvision %s magnitude tables: space op bins h w values..." % torchvision.__version__]
    for h, w in [(28, 28), (32, 32), (16, 24)]:
        for tag, space, nb in [("ra", ra._augmentation_space(31, (h, w)), 31),
                               ("ta", ta._augmentation_space(31), 31),
                               ("aa", aa._augmentation_space(10, (h, w)), 10)]:
            for name, (mags, signed) in space.items():
                if mags.ndim == 0:
                    continue
                vals = " ".join("%.9g" % float(v) for v in mags.tolist())
                mlines.append("%s %s %d %d %d %d %s" % (tag, name, nb, h, w, 1 if signed else 0, vals))
    with open(os.path.join(OUT, "magnitudes.txt"), "w") as fh:
        fh.write("\n".join(mlines) + "\n")
    # AutoAugment's sub-policies as torchvision stores them.
    alines = ["# torchvision %s AutoAugment policies: table index op p bin op p bin (bin -1 = None)" % torchvision.__version__]
    for tag, pol in [("cifar10", AA.AutoAugmentPolicy.CIFAR10), ("svhn", AA.AutoAugmentPolicy.SVHN),
                     ("imagenet", AA.AutoAugmentPolicy.IMAGENET)]:
        for i, sub in enumerate(AA.AutoAugment(pol).policies):
            parts = []
            for name, p, b in sub:
                parts.append("%s %.9g %d" % (name, p, -1 if b is None else b))
            alines.append("%s %d %s" % (tag, i, " ".join(parts)))
    with open(os.path.join(OUT, "autoaugment.txt"), "w") as fh:
        fh.write("\n".join(alines) + "\n")
    print("wrote %d op lines, %d magnitude lines to %s" % (len(lines), len(mlines), OUT), file=sys.stderr)


if __name__ == "__main__":
    main()
