#!/usr/bin/python3
"""Prints the side-by-side table of bench/accuracy_vs_pytorch.sh from its
output folder: regain's metrics.csv and timing, PyTorch's JSON result."""
import csv
import json
import sys

out = sys.argv[1]
with open(f"{out}/regain-run/metrics.csv") as f:
    rows = list(csv.DictReader(f))
start, end = (float(x) for x in open(f"{out}/regain.time").read().split())
with open(f"{out}/pytorch.json") as f:
    pt = json.load(f)

r_top1 = 100.0 * float(rows[-1]["test_top1"])
p_top1 = float(pt["test_top1"])
print(f"| framework | epochs | final test top-1 | wall time |")
print(f"| --- | --- | --- | --- |")
print(f"| regain | {len(rows)} | {r_top1:.2f} % | {(end - start) / 60:.1f} min |")
print(f"| PyTorch {pt['torch_version']} | {len(pt['history'])} | {p_top1:.2f} % | {pt['wall_s'] / 60:.1f} min |")
print(f"\ndifference (regain - PyTorch): {r_top1 - p_top1:+.2f} points")
