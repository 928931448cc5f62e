"""torch.distributed setup for ``torchrun`` launches (one process per device)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from astrojepa_cli.errors import UserError
from astrojepa_cli.train.config import DEVICES


@dataclass(frozen=True)
class Placement:
    """Where this process trains: its device, rank and the world size."""

    device: torch.device
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def launched_as_secondary_rank() -> bool:
    """True in a torchrun worker other than rank 0 (which alone prints and writes)."""
    return int(os.environ.get("RANK", "0")) != 0


def gpu_available(choice: str) -> bool:
    """Whether ``--device choice`` would train on a CUDA GPU (``auto`` picks one when there is one)."""
    kind = choice.split(":")[0]
    return kind in ("auto", "cuda") and torch.cuda.is_available()


def resolve_device(choice: str) -> torch.device:
    """``auto`` picks CUDA, then MPS, then the CPU; an explicit choice (``cuda:1`` too) must be available."""
    kind, _, index = choice.partition(":")
    if kind not in DEVICES or (index and not index.isdigit()) or (index and kind != "cuda"):
        raise UserError(f"--device must be one of {', '.join(DEVICES)} (or cuda:N), got '{choice}'")
    if index and torch.cuda.is_available() and int(index) >= torch.cuda.device_count():
        raise UserError(f"--device {choice}: there are {torch.cuda.device_count()} CUDA devices")
    if choice == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if kind == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but no CUDA device is available")
    if choice == "mps" and not torch.backends.mps.is_available():
        raise UserError("--device mps was asked for but MPS is not available")
    return torch.device(choice)


def setup(device_choice: str) -> Placement:
    """Join the process group when launched by torchrun (RANK/WORLD_SIZE set), else run alone."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    device = resolve_device(device_choice)
    if world_size == 1:
        return Placement(device)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Placement(device, dist.get_rank(), dist.get_world_size())


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def broadcast_flag(flag: bool, placement: Placement) -> bool:
    """True on every rank if ``flag`` is true on any rank (used for stop requests)."""
    if not placement.distributed:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=placement.device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())
