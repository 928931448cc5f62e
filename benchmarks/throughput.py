"""Pretraining throughput: astrojepa's loop against a plain reference loop, in the same run.

Ours is the real ``astrojepa pretrain`` loop (library call, same code path as the
CLI): the store sits on the device as uint8, views are made in batch on the
device, one encoder call per view resolution.

The reference is what a straightforward PyTorch script does: the same timm
encoder, projector and LeJEPA loss, but views made per sample by torchvision
transforms inside a ``Dataset`` and batched by a ``DataLoader``, each view
encoded by its own call.

Usage::

    python benchmarks/throughput.py --data gz1 --archs vit-t,resnet18 --steps 12
    python benchmarks/throughput.py --data gz1 --device cuda --archs vit-s --img-size 224 --mfu

Prints a markdown table (images/s, peak memory, speed-up over the reference).
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from astrojepa_cli import paths, runs
from astrojepa_cli.data import store
from astrojepa_cli.train.config import PretrainConfig
from astrojepa_cli.train.loop import build_objective, pretrain
from registry.losses import lejepa_prediction_loss


class PerSampleViews(Dataset):
    """Per-sample torchvision views of uint8 store images (the reference pipeline)."""

    def __init__(self, images: np.ndarray, mean: np.ndarray, std: np.ndarray, global_views: int, local_views: int,
                 global_size: int, local_size: int) -> None:
        self.images = images
        rotate = v2.RandomChoice([v2.RandomRotation((a, a)) for a in (0, 90, 180, 270)])
        normalise = [v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean.tolist(), std.tolist())]
        self.global_transform = v2.Compose([v2.RandomResizedCrop(global_size, scale=(0.3, 1.0), antialias=True),
                                            v2.RandomHorizontalFlip(), rotate, *normalise])
        self.local_transform = v2.Compose([v2.RandomResizedCrop(local_size, scale=(0.05, 0.3), antialias=True),
                                           v2.RandomHorizontalFlip(), rotate, *normalise])
        self.global_views, self.local_views = global_views, local_views

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        image = torch.from_numpy(self.images[index]).permute(2, 0, 1)
        return ([self.global_transform(image) for _ in range(self.global_views)],
                [self.local_transform(image) for _ in range(self.local_views)])


def reference_throughput(config: PretrainConfig, store_path: Path, device: torch.device,
                         steps: int) -> tuple[float, float]:
    """Images/s of the reference loop, and the share of its timed wall time spent waiting for batches.

    The share bounds what any input pipeline can gain: a loop whose data cost nothing
    would be at most 1 / (1 - share) times faster with the same model arithmetic.
    """
    arrays = store.load(store_path)
    rows = np.flatnonzero(arrays.split == "train")
    scale = 255.0 if arrays.images.dtype == np.uint8 else 1.0
    img_size = config.img_size or arrays.images.shape[1]
    objective = build_objective(config, arrays.images.shape[-1], img_size).to(device)
    local_size = objective.view_specs[-1].size if config.local_views else img_size
    dataset = PerSampleViews(arrays.images[rows], arrays.channel_mean / scale, arrays.channel_std / scale,
                             config.global_views, config.local_views, config.global_size or img_size, local_size)
    loader = DataLoader(dataset, batch_size=config.batch_size, shuffle=True, drop_last=True, num_workers=0)
    optimizer = torch.optim.AdamW(objective.parameters(), lr=config.lr,
                                  weight_decay=config.with_method_defaults().weight_decay)
    timed_images, started, data_seconds = 0, None, 0.0
    batches = iter(loader)
    for step in range(steps + 2):
        if step == 2:  # exclude warm-up steps, as ours does through its own first log window
            started = time.perf_counter()
        fetch_started = time.perf_counter()
        batch = next(batches, None)
        if batch is None:  # more steps than one pass over the data
            batches = iter(loader)
            batch = next(batches)
        global_views, local_views = batch
        if started is not None:
            data_seconds += time.perf_counter() - fetch_started
        views = [v.to(device) for v in global_views + local_views]
        projections = torch.stack([objective.projector(objective.encoder(v)) for v in views])
        prediction = lejepa_prediction_loss(projections, config.global_views)
        regulariser = torch.stack([objective.sigreg(p, step=step) for p in projections]).mean()
        loss = (1 - config.lam) * prediction + config.lam * regulariser
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if started is not None:
            timed_images += config.batch_size
    if device.type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - started
    return timed_images / elapsed, data_seconds / elapsed


def peak_memory_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="first-radio")
    parser.add_argument("--root", type=Path, default=None)
    parser.add_argument("--archs", default="vit-t,resnet18")
    parser.add_argument("--losses", default="lejepa")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--img-size", type=int, default=None)
    parser.add_argument("--local-views", type=int, default=6)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--compile", action="store_true", help="torch.compile our model (the reference stays eager).")
    args = parser.parse_args()
    store_path = paths.existing_store(args.data, args.root)
    device = torch.device(args.device)
    print(f"device: {device}, data: {args.data}, batch {args.batch_size}, {args.steps} timed steps each")
    print("| arch | loss | reference img/s | reference data share | astrojepa img/s | speed-up | "
          "peak memory MiB (process) |")
    print("|---|---|---|---|---|---|---|")
    for arch in args.archs.split(","):
        for loss in args.losses.split(","):
            config = PretrainConfig(data=args.data, arch=arch, loss=loss, batch_size=args.batch_size,
                                    img_size=args.img_size, local_views=args.local_views, device=args.device,
                                    max_steps=args.steps + 2, log_every=2, epochs=1000,
                                    precision=args.precision, compile=args.compile)
            reference, data_share = reference_throughput(config, store_path, device, args.steps)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            run_dir = Path(pretrain(config, root=args.root, progress=False).run_dir)
            ours = runs.steady_images_per_second(run_dir / "metrics.jsonl")
            print(f"| {arch} | {loss} | {reference:.1f} | {data_share:.0%} | {ours:.1f} | {ours / reference:.2f}x | "
                  f"{peak_memory_mib(device):.0f} |", flush=True)


if __name__ == "__main__":
    main()
