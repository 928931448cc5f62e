"""Where one training step's time goes: the engine's real step (views, forward, loss, backward,
fused AdamW) under ``torch.profiler``, in fp32 and in bf16 on the same machine and process.

Each recipe builds its objective the way ``pretrain`` does (channels-last CNN, fused AdamW),
warms up, then times ``--steps`` steps per precision, alternating precisions so a shared
machine's drift hits both, and profiles one more step of each. Writes
``benchmarks/results/precision/profile-<recipe>.json`` (median seconds per step, the top operators by
self CPU time) and prints a markdown table.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/profile_step.py --data gz1-48 --steps 4
    OMP_NUM_THREADS=1 python benchmarks/profile_step.py --data gz1-48 --recipes simclr-resnet18 --steps 3 --compile --tag compile
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from astrojepa_cli import paths
from astrojepa_cli.data import store
from astrojepa_cli.train.build import build_optimizer, to_training_layout
from astrojepa_cli.train.budget import machine
from astrojepa_cli.train.config import PretrainConfig
from astrojepa_cli.train.step import forward, step_generator, update
from astrojepa_cli.train.training_data import load_training_data, training_rows
from registry.objective import build_objective

RESULTS = Path(__file__).resolve().parent / "results" / "precision"
# The small-cpu preset's recipe, the lejepa-cpu preset's, and I-JEPA on a ViT-T with 4 px patches.
RECIPES = {
    "simclr-resnet18": {"arch": "resnet18", "loss": "simclr", "img_size": 32, "batch_size": 128, "lr": 1e-3,
                        "local_views": 0},
    "lejepa-resnet18": {"arch": "resnet18", "loss": "lejepa", "img_size": 32, "batch_size": 128, "lr": 1e-3,
                        "global_views": 2, "local_views": 2, "lam": 0.2},
    "ijepa-vit-t": {"arch": "vit-t", "loss": "ijepa", "masker": "multiblock", "img_size": 32, "patch_size": 4,
                    "batch_size": 128, "local_views": 0},
}
TOP_OPS = 15


def _build(config: PretrainConfig, root: Path | None, compiled: bool):
    store_path = paths.existing_store(config.data, root)
    info = store.read_info(store_path)
    _, rows, _ = training_rows(store_path, info, ("train",))
    device = torch.device("cpu")
    torch.manual_seed(0)
    objective = to_training_layout(build_objective(config, info.channels, config.img_size), device)
    optimizer = build_optimizer(objective, config, device)
    data = load_training_data(store_path, info, rows, config.stretch, device)
    model = torch.compile(objective) if compiled else objective
    batch_rows = torch.arange(config.batch_size)

    def step(number: int, precision: str) -> None:
        terms = forward(model, data.images.batch(batch_rows), number, step_generator(0, number, device), precision)
        update(terms["loss"], objective, optimizer, number, 1000)

    return step


def profile_recipe(name: str, data: str, root: Path | None, steps: int, compiled: bool) -> dict:
    config = PretrainConfig(data=data, **RECIPES[name]).with_method_defaults()
    step = _build(config, root, compiled)
    precisions = ("fp32", "bf16")
    number, warmup_s = 0, {}
    for precision in precisions:  # warm-up: allocation, oneDNN kernel choice (and compilation)
        started = time.perf_counter()
        for _ in range(2):
            step(number, precision)
            number += 1
        warmup_s[precision] = round(time.perf_counter() - started, 2)
    seconds: dict[str, list[float]] = {p: [] for p in precisions}
    for _ in range(steps):
        for precision in precisions:
            started = time.perf_counter()
            step(number, precision)
            seconds[precision].append(time.perf_counter() - started)
            number += 1
    result = {"recipe": name, "config": RECIPES[name], "compile": compiled, "machine": machine(),
              "threads": torch.get_num_threads(), "steps": steps, "warmup_s": warmup_s, "precisions": {}}
    for precision in precisions:
        with profile(activities=[ProfilerActivity.CPU]) as profiler:
            step(number, precision)
        number += 1
        events = sorted(profiler.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
        total = sum(e.self_cpu_time_total for e in events)
        result["precisions"][precision] = {
            "seconds_per_step": round(statistics.median(seconds[precision]), 4),
            "seconds_per_step_all": [round(s, 4) for s in seconds[precision]],
            "images_per_second": round(config.batch_size / statistics.median(seconds[precision]), 1),
            "top_ops": [{"op": e.key, "self_cpu_share": round(e.self_cpu_time_total / total, 4),
                         "calls": e.count} for e in events[:TOP_OPS]],
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="gz1-48")
    parser.add_argument("--root", type=Path, default=None)
    parser.add_argument("--recipes", default=",".join(RECIPES))
    parser.add_argument("--steps", type=int, default=5, help="Timed steps per precision.")
    parser.add_argument("--compile", action="store_true", help="torch.compile the objective.")
    parser.add_argument("--tag", default="", help="Suffix of the result files' names.")
    args = parser.parse_args()
    print(f"machine: {machine()}, threads {torch.get_num_threads()}")
    print("| recipe | fp32 s/step | bf16 s/step | bf16 speed-up | top fp32 ops (self CPU share) |")
    print("|---|---|---|---|---|")
    for name in args.recipes.split(","):
        result = profile_recipe(name, args.data, args.root, args.steps, args.compile)
        suffix = f"-{args.tag}" if args.tag else ""
        (RESULTS / f"profile-{name}{suffix}.json").write_text(json.dumps(result, indent=2) + "\n")
        fp32, bf16 = (result["precisions"][p] for p in ("fp32", "bf16"))
        top = ", ".join(f"{op['op']} {op['self_cpu_share']:.0%}" for op in fp32["top_ops"][:4])
        print(f"| {name} | {fp32['seconds_per_step']:.3f} | {bf16['seconds_per_step']:.3f} | "
              f"{fp32['seconds_per_step'] / bf16['seconds_per_step']:.2f}x | {top} |", flush=True)


if __name__ == "__main__":
    main()
