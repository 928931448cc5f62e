"""Differentiable collectives over DDP ranks; each is the identity when not distributed.

Losses whose value depends on the whole batch (SIGReg's characteristic
function, NT-Xent's negatives, VICReg's covariance) use these so that a run on
W processes computes the loss of the global batch.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def world_size() -> int:
    """Number of DDP processes (1 when not distributed)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def world_rank() -> int:
    """This process's DDP rank (0 when not distributed)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_mean(values: torch.Tensor) -> torch.Tensor:
    """Average ``values`` over ranks, keeping the autograd graph."""
    if world_size() == 1:
        return values
    from torch.distributed.nn.functional import all_reduce

    return all_reduce(values, op=dist.ReduceOp.SUM) / world_size()


def world_cat(values: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's ``values`` along dim 0 (rank order), keeping the autograd graph."""
    if world_size() == 1:
        return values
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(values))


def world_min(value: int, device: torch.device | str = "cpu") -> int:
    """The smallest ``value`` over ranks (no gradient; used to give every rank the same mask sizes)."""
    if world_size() == 1:
        return value
    reduced = torch.tensor(value, device=device)
    dist.all_reduce(reduced, op=dist.ReduceOp.MIN)
    return int(reduced)


def local_rows(values: torch.Tensor, shard: tuple[int, int]) -> torch.Tensor:
    """This rank's rows of a per-image draw made for the whole global batch.

    The training loop gives rank ``r`` of ``W`` the global batch items ``r, r + W, ...``;
    drawing for all of them and keeping these rows makes a DDP run draw what one
    process would for the same global batch.
    """
    rank, world = shard
    return values[rank::world] if world > 1 else values
