"""Differentiable collectives over DDP ranks; each is the identity when not distributed.

Losses whose value depends on the whole batch (SIGReg's characteristic
function, NT-Xent's negatives, VICReg's covariance) use these so that a run on
W processes computes the loss of the global batch.

The two autograd functions call the plain ``torch.distributed`` collectives,
which every backend (gloo, NCCL) and every supported torch version has; the
backward of each follows from the forward by the chain rule over ranks.
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


def _summed(values: torch.Tensor) -> torch.Tensor:
    """A new tensor holding Σ_r values_r over ranks (``values`` is left as it is)."""
    total = values.contiguous().clone()
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total


class _SumOverRanks(torch.autograd.Function):
    """y = Σ_r x_r on every rank. Every rank's loss depends on y, so ∂L/∂x_r = Σ_k ∂L_k/∂y."""

    @staticmethod
    def forward(ctx, values: torch.Tensor) -> torch.Tensor:
        return _summed(values)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return _summed(grad)


class _ConcatOverRanks(torch.autograd.Function):
    """y = [x_0; x_1; …] on every rank. ∂L/∂x_r is rank r's block of Σ_k ∂L_k/∂y."""

    @staticmethod
    def forward(ctx, values: torch.Tensor) -> torch.Tensor:
        values = values.contiguous()
        blocks = [torch.empty_like(values) for _ in range(world_size())]
        dist.all_gather(blocks, values)
        ctx.rows = values.shape[0]
        return torch.cat(blocks)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        start = world_rank() * ctx.rows
        return _summed(grad)[start : start + ctx.rows]


def world_mean(values: torch.Tensor) -> torch.Tensor:
    """Average ``values`` over ranks, keeping the autograd graph."""
    if world_size() == 1:
        return values
    return _SumOverRanks.apply(values) / world_size()


def world_cat(values: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's ``values`` along dim 0 (rank order), keeping the autograd graph.

    Every rank must pass the same shape; the training loop's even shards guarantee it.
    """
    if world_size() == 1:
        return values
    return _ConcatOverRanks.apply(values)


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
