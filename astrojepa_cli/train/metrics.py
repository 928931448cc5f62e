"""The rows of ``metrics.jsonl``: loss terms averaged over the steps since the last row, and throughput."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
import torch.distributed as dist

from astrojepa_cli.train.distributed import Placement


# A run logs at least about this many rows, however short, so its loss curve has a shape.
MIN_ROWS = 50


def log_interval(log_every: int, total_steps: int) -> int:
    """Steps between rows: ``--log-every``, shortened for a run of fewer than ``MIN_ROWS * log_every`` steps."""
    return min(log_every, max(1, total_steps // MIN_ROWS))


class MetricsWindow:
    """The loss terms summed over the steps since the last row, and the training time and images so far."""

    def __init__(self, global_batch: int) -> None:
        self.global_batch = global_batch
        self.sums: dict[str, torch.Tensor] = {}
        self.steps = 0
        self.images_seen = 0
        self.train_seconds = 0.0
        self.tick = time.perf_counter()

    def add(self, terms: dict[str, torch.Tensor]) -> None:
        """Count one step's terms (summed on the device: no host-device sync)."""
        for name, value in terms.items():
            self.sums[name] = self.sums.get(name, 0) + value.detach().float()
        self.steps += 1
        self.images_seen += self.global_batch

    def means(self, placement: Placement) -> dict[str, float]:
        """Mean of each term over the window's steps and over every rank (one sync)."""
        names = sorted(self.sums)
        stacked = torch.stack([self.sums[n] for n in names]) / self.steps
        if placement.distributed:
            dist.all_reduce(stacked)
            stacked /= placement.world_size
        return dict(zip(names, stacked.tolist()))

    def close(self) -> float:
        """End the window: count its time as training time, start an empty one, return its images per second."""
        elapsed = time.perf_counter() - self.tick
        self.train_seconds += elapsed
        rate = self.steps * self.global_batch / max(elapsed, 1e-9)
        self.sums, self.steps = {}, 0
        return rate

    def restart_clock(self) -> None:
        """Start timing the next window here (time spent since ``close``, e.g. saving, is not training)."""
        self.tick = time.perf_counter()

    @property
    def images_per_second(self) -> float:
        return self.images_seen / self.train_seconds if self.train_seconds > 0 else 0.0


def append_row(path: Path, row: dict) -> None:
    with open(path, "a") as handle:
        handle.write(json.dumps(row) + "\n")
