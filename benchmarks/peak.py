"""This machine's measured peak: the best matmul and convolution GFLOP/s in fp32 and bf16.

The same measurement ``pretrain --precision auto`` and ``throughput.py --mfu`` read from the
cache (:mod:`astrojepa_cli.train.peak`); here it is re-measured and written to a results file.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/peak.py --repeats 3 --out benchmarks/results/precision/peak-epyc-avx512bf16-1thread.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

from astrojepa_cli.train.budget import machine
from astrojepa_cli.train.peak import measure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="Whole measurements; the table shows their medians.")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    measurements = [measure() for _ in range(args.repeats)]
    table = {kind: {precision: statistics.median(m[kind][precision] for m in measurements)
                    for precision in ("fp32", "bf16")} for kind in measurements[0]}
    print(f"machine: {machine()}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    print("| kernel | fp32 GFLOP/s | bf16 GFLOP/s | bf16 / fp32 |")
    print("|---|---|---|---|")
    for kind, rates in table.items():
        print(f"| {kind} | {rates['fp32']:.1f} | {rates['bf16']:.1f} | {rates['bf16'] / rates['fp32']:.2f}x |")
    if args.out:
        args.out.write_text(json.dumps({"machine": machine(), "torch": torch.__version__,
                                        "threads": torch.get_num_threads(), "median": table,
                                        "measurements": measurements}, indent=2) + "\n")


if __name__ == "__main__":
    main()
