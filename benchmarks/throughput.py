"""Pretraining throughput: astrojepa's loop against a plain reference loop, in the same run.

Ours is the real ``astrojepa pretrain`` loop (library call, same code path as the
CLI): the store sits on the device as uint8, views are made in batch on the
device, one encoder call per view resolution, a convolutional encoder runs
channels-last and AdamW is fused.

The reference is what a straightforward PyTorch script does: the same timm
encoder, projector and LeJEPA loss under the same precision, but views made per
sample by torchvision transforms inside a ``Dataset`` and batched by a
``DataLoader``, each view encoded by its own call, and a default AdamW. It exists
for LeJEPA only; other losses are measured without it.

``--repeats R`` measures the two loops R times, alternating which goes first, and
reports medians, so drift in a shared machine's speed hits both. ``--mfu`` adds
model FLOPs utilisation: the FLOPs of one training step (forward and backward,
counted by ``torch.utils.flop_counter``) times our steps/s, over the device's peak:
a GPU's data-sheet bf16 peak; on a CPU the best matmul or convolution rate measured on this
machine in the precision the run used (:mod:`astrojepa_cli.train.peak`, cached); or ``--peak-tflops``.

Usage::

    python benchmarks/throughput.py --data gz1-48 --archs vit-t,resnet18 --steps 10 --repeats 3
    python benchmarks/throughput.py --data g10-sized --device cuda --archs vit-s --patch-size 16 \\
        --img-size 224 --local-size 96 --losses lejepa,ijepa --batch-size 256 --mfu

Prints a markdown table.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from torch.utils.flop_counter import FlopCounterMode
from torchvision.transforms import v2

from astrojepa_cli import paths, runs
from astrojepa_cli.data import store
from astrojepa_cli.train.build import autocast_for, to_training_layout
from astrojepa_cli.train.config import PretrainConfig
from astrojepa_cli.train.loop import pretrain
from astrojepa_cli.train.method_options import options_for
from astrojepa_cli.train.peak import machine_peak
from registry.objective import build_objective
from registry.losses import lejepa_prediction_loss

# Dense bf16 tensor-core peaks from the vendors' data sheets, in TFLOP/s, matched against
# torch.cuda.get_device_name(); the first matching entry wins. --peak-tflops overrides.
BF16_PEAK_TFLOPS = (
    ("H200", 989.4),
    ("H100 PCIe", 756.0),
    ("H100", 989.4),  # SXM (HBM3)
    ("A100", 312.0),
    ("L40S", 362.1),
    ("L4", 121.0),
)


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
            _synchronise(device)
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
        with autocast_for(device, config.precision):
            projections = torch.stack([objective.projector(objective.encoder(v)) for v in views]).float()
        prediction = lejepa_prediction_loss(projections, config.global_views)
        regulariser = torch.stack([objective.sigreg(p, step=step) for p in projections]).mean()
        loss = (1 - config.lam) * prediction + config.lam * regulariser
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if started is not None:
            timed_images += config.batch_size
    _synchronise(device)
    elapsed = time.perf_counter() - started
    return timed_images / elapsed, data_seconds / elapsed


def ours_throughput(config: PretrainConfig, root: Path | None) -> tuple[float, str]:
    """Steady images/s of the real pretraining loop (its first, warm-up log window excluded), and the
    precision the run used."""
    run = runs.open_run(Path(pretrain(config, root=root, progress=False).run_dir))
    return runs.steady_images_per_second(run.dir / "metrics.jsonl"), run.manifest["precision"]["used"]


def training_flops_per_image(config: PretrainConfig, store_path: Path, device: torch.device) -> float:
    """FLOPs of one forward and backward pass of the objective, per image of the batch.

    Counted by ``torch.utils.flop_counter.FlopCounterMode`` (matmuls, convolutions and
    attention; elementwise work is not counted, as is usual for MFU).
    """
    info = store.read_info(store_path)
    img_size = config.img_size or info.image_shape[0]
    objective = to_training_layout(build_objective(config.with_method_defaults(), info.channels, img_size), device)
    images = torch.randn(config.batch_size, info.channels, img_size, img_size, device=device)
    generator = torch.Generator(device=device).manual_seed(0)
    with FlopCounterMode(display=False) as counter:
        with autocast_for(device, config.precision):
            loss = objective(images, 0, generator)["loss"]
        loss.backward()
    return counter.get_total_flops() / config.batch_size


def peak_tflops(device: torch.device, override: float | None, precision: str = "fp32",
                root: Path | None = None) -> tuple[float, str] | None:
    """The device's peak TFLOP/s and where it comes from: ``override``, a known GPU's data sheet, or on a
    CPU the best matmul or convolution rate measured on this machine in ``precision``."""
    if override is not None:
        return override, "given"
    if device.type == "cpu":
        measured = machine_peak(root)
        return max(measured[kind][precision] for kind in ("matmul", "conv")) / 1000, f"measured {precision} peak"
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next(((peak, "bf16 data sheet") for key, peak in BF16_PEAK_TFLOPS if key in name), None)


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _spread(values: list[float], digits: int, suffix: str = "") -> str:
    """Median, with the range when there are several values."""
    median = f"{statistics.median(values):.{digits}f}{suffix}"
    if len(values) == 1:
        return median
    return f"{median} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="first-radio")
    parser.add_argument("--root", type=Path, default=None)
    parser.add_argument("--archs", default="vit-t,resnet18")
    parser.add_argument("--losses", default="lejepa")
    parser.add_argument("--steps", type=int, default=12, help="Timed steps per measurement (after 2 warm-up steps).")
    parser.add_argument("--repeats", type=int, default=1, help="Measurements of each loop, alternating their order.")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--img-size", type=int, default=None)
    parser.add_argument("--patch-size", type=int, default=None)
    parser.add_argument("--global-size", type=int, default=None)
    parser.add_argument("--local-size", type=int, default=None)
    parser.add_argument("--local-views", type=int, default=6)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="auto",
                        help="Ours and the reference alike (auto: the reference runs fp32 on a CPU; pass fp32 or bf16).")
    parser.add_argument("--compile", action="store_true", help="torch.compile our model (the reference stays eager).")
    parser.add_argument("--mfu", action="store_true", help="Also report model FLOPs utilisation.")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="The device's peak TFLOP/s for --mfu (default: looked up for known GPUs).")
    args = parser.parse_args()
    store_path = paths.existing_store(args.data, args.root)
    device = torch.device(args.device)
    peak = peak_tflops(device, args.peak_tflops, "fp32" if args.precision == "auto" else args.precision,
                       args.root) if args.mfu else None
    if args.mfu and peak is None:
        parser.error(f"no data-sheet peak known for {device}; pass --peak-tflops")
    print(f"device: {torch.cuda.get_device_name(device) if device.type == 'cuda' else device}, data: {args.data}, "
          f"batch {args.batch_size}, {args.steps} timed steps, {args.repeats} repeat(s), precision {args.precision}")
    if peak is not None:
        print(f"MFU against {peak[0]:.3g} TFLOP/s ({peak[1]})")
    print("| arch | loss | reference img/s | reference data share | astrojepa img/s | speed-up | "
          "peak memory MiB (ours; CPU: process RSS) | MFU reference | MFU astrojepa |"
          + (" precision, MFU peak |" if peak else ""))
    print("|---|---|---|---|---|---|---|---|---|" + ("---|" if peak else ""))
    sizes = {name: getattr(args, name) for name in ("img_size", "patch_size", "global_size", "local_size")
             if getattr(args, name) is not None}
    for arch in args.archs.split(","):
        for loss in args.losses.split(","):
            views = options_for(loss, {**sizes, "local_views": args.local_views})
            config = PretrainConfig(data=args.data, arch=arch, loss=loss, batch_size=args.batch_size, **views,
                                    device=args.device, max_steps=args.steps + 2, log_every=2, epochs=1000,
                                    precision=args.precision, compile=args.compile)
            with_reference = loss == "lejepa"
            references, ours, memory = [], [], 0.0
            for repeat in range(args.repeats):
                if with_reference and repeat % 2 == 0:
                    references.append(reference_throughput(config, store_path, device, args.steps))
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                rate, used = ours_throughput(config, args.root)
                ours.append(rate)
                memory = max(memory, peak_memory_mib(device))
                if with_reference and repeat % 2 == 1:
                    references.append(reference_throughput(config, store_path, device, args.steps))
            rates = [rate for rate, _ in references]
            cells = ["n/a", "n/a", _spread(ours, 1), "n/a"]
            utilisation = ["n/a", "n/a"]
            if rates:
                cells = [_spread(rates, 1), _spread([100 * share for _, share in references], 0, "%"),
                         _spread(ours, 1), _spread([o / r for o, r in zip(ours, rates)], 2, "x")]
            if peak is not None:
                if device.type == "cpu" and args.peak_tflops is None:  # the peak of the precision the run used
                    peak = peak_tflops(device, None, used, args.root)
                flops = training_flops_per_image(replace(config, precision=used), store_path, device) / (peak[0] * 1e12)
                utilisation = [f"{statistics.median(rates) * flops:.1%}" if rates else "n/a",
                               f"{statistics.median(ours) * flops:.1%}"]
            peak_note = f" | {used}, peak {peak[0] * 1000:.0f} GFLOP/s" if peak is not None else ""
            print(f"| {arch} | {loss} | {' | '.join(cells)} | {memory:.0f} | {' | '.join(utilisation)}{peak_note} |",
                  flush=True)


if __name__ == "__main__":
    main()
