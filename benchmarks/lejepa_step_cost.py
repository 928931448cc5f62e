"""Seconds per LeJEPA training step of several view/projector recipes, measured in one run.

Every recipe is the same encoder from the same seed on the same batch, built as
``pretrain`` builds it (:func:`registry.objective.build_objective`, the engine's layout
and fused AdamW). Steps alternate between the recipes in rounds, so drift in a shared
machine's speed hits all of them, and medians are compared with the first recipe.

Usage::

    python benchmarks/lejepa_step_cost.py --json benchmarks/results/lejepa-step-cost.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from astrojepa_cli.train.budget import machine  # noqa: E402
from astrojepa_cli.train.build import build_optimizer, to_training_layout  # noqa: E402
from astrojepa_cli.train.config import PretrainConfig  # noqa: E402
from benchmarks.engine_options import step_seconds  # noqa: E402
from registry.objective import build_objective  # noqa: E402

# name: LeJEPA options; the first is the baseline (the lejepa-cpu preset before local views were dropped).
RECIPES = {
    "2 global + 2 local, proj 512": {"global_views": 2, "local_views": 2, "proj_hidden": 512},
    "2 global, proj 512": {"global_views": 2, "local_views": 0, "proj_hidden": 512},
    "2 global, proj 2048": {"global_views": 2, "local_views": 0, "proj_hidden": 2048},
    "4 global, proj 2048": {"global_views": 4, "local_views": 0, "proj_hidden": 2048},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--img-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    images = torch.randn(args.batch_size, args.channels, args.img_size, args.img_size,
                         generator=torch.Generator().manual_seed(0))
    built = {}
    for name, options in RECIPES.items():
        config = PretrainConfig(arch=args.arch, loss="lejepa", img_size=args.img_size, **options).with_method_defaults()
        torch.manual_seed(0)
        objective = to_training_layout(build_objective(config, args.channels, args.img_size), device)
        built[name] = (objective, build_optimizer(objective, config, device))
    times = {name: [] for name in RECIPES}
    for round_ in range(args.rounds + 1):
        for name, (objective, optimizer) in built.items():
            seconds = step_seconds(objective, optimizer, images, round_)
            if round_:  # the first round warms up oneDNN's kernels
                times[name].append(seconds)
    baseline = statistics.median(times[next(iter(RECIPES))])
    rows = []
    for name, samples in times.items():
        median = statistics.median(samples)
        rows.append({"recipe": name, "options": RECIPES[name], "median_s": round(median, 4),
                     "relative": round(median / baseline, 3)})
        print(f"{name:30s} {median:.3f} s/step  x{median / baseline:.2f}", flush=True)
    if args.json:
        payload = {"benchmark": "lejepa_step_cost", "arch": args.arch, "img_size": args.img_size,
                   "batch_size": args.batch_size, "channels": args.channels, "rounds": args.rounds,
                   "threads": args.threads, "machine": machine(), "rows": rows,
                   "command": f"python benchmarks/lejepa_step_cost.py --threads {args.threads} --json {args.json}"}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
