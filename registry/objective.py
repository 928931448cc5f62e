"""The interface every training objective (a ``loss`` plugin used by ``pretrain``) implements."""

from __future__ import annotations

import torch
from torch import nn


class Objective(nn.Module):
    """A self-supervised objective that owns the encoder and any heads it trains.

    ``forward(images, step, generator)`` takes a normalised (N, C, H, W) batch on
    the training device and returns a dict with the scalar ``loss`` and each of
    its terms (detached or not; the loop only logs them). ``generator`` is the
    per-step random generator for views and masks, so a resumed run draws the
    same augmentations as an uninterrupted one.

    The returned dict may also carry ``embedding``: detached (N, D) encoder
    embeddings of one view of the batch, which the loop's online probe uses.

    ``shard = (rank, world_size)`` is set by the training loop under DDP; pass
    it to :func:`registry.views.random_views` so every rank draws its part of
    the global batch's augmentations.
    """

    encoder: nn.Module
    shard: tuple[int, int] = (0, 1)

    def forward(self, images: torch.Tensor, step: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def on_step_end(self, step: int, total_steps: int) -> None:
        """Hook after each optimiser step (e.g. an EMA update); nothing by default."""
