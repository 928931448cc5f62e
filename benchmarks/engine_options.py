"""What the engine's kernel choices buy: channels-last CNNs and fused AdamW against the defaults, in one run.

Both sides are the same objective from the same seed on the same batch; only the
layout (:func:`astrojepa_cli.train.loop.to_training_layout`) and the optimiser
(:func:`astrojepa_cli.train.loop.build_optimizer`, fused) differ from a plain
``.to(device)`` and a default AdamW. Training steps alternate between the two in
rounds, so drift in a shared machine's speed hits both, and medians are compared.

Usage::

    python benchmarks/engine_options.py --archs resnet18,vit-t --img-size 48
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from astrojepa_cli.train.config import PretrainConfig
from astrojepa_cli.train.build import build_optimizer, to_training_layout
from registry.objective import build_objective


def step_seconds(objective, optimizer, images: torch.Tensor, step: int) -> float:
    started = time.perf_counter()
    objective(images, step, torch.Generator(device=images.device).manual_seed(step))["loss"].backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    if images.device.type == "cuda":
        torch.cuda.synchronize(images.device)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--archs", default="resnet18,vit-t")
    parser.add_argument("--loss", default="lejepa")
    parser.add_argument("--img-size", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=8, help="Alternating rounds; the first is warm-up.")
    parser.add_argument("--steps-per-round", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    images = torch.randn(args.batch_size, 3, args.img_size, args.img_size, device=device)
    print(f"device: {device}, loss {args.loss}, {args.img_size} px, batch {args.batch_size}, "
          f"{args.rounds - 1} timed rounds of {args.steps_per_round} steps each")
    print("| arch | default s/step | engine s/step | speed-up |")
    print("|---|---|---|---|")
    for arch in args.archs.split(","):
        config = PretrainConfig(data="-", arch=arch, loss=args.loss, batch_size=args.batch_size).with_method_defaults()
        torch.manual_seed(0)
        default = build_objective(config, 3, args.img_size).to(device)
        default_optimizer = torch.optim.AdamW(default.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        torch.manual_seed(0)
        engine = to_training_layout(build_objective(config, 3, args.img_size), device)
        engine_optimizer = build_optimizer(engine, config, device)
        sides = [("default", default, default_optimizer), ("engine", engine, engine_optimizer)]
        seconds: dict[str, list[float]] = {"default": [], "engine": []}
        for round_index in range(args.rounds):
            for name, objective, optimizer in sides if round_index % 2 == 0 else sides[::-1]:
                timings = [step_seconds(objective, optimizer, images, step) for step in range(args.steps_per_round)]
                if round_index:
                    seconds[name] += timings
        default_median, engine_median = (statistics.median(seconds[name]) for name in ("default", "engine"))
        print(f"| {arch} | {default_median:.3f} | {engine_median:.3f} | {default_median / engine_median:.2f}x |",
              flush=True)


if __name__ == "__main__":
    main()
