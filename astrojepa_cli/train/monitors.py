"""Training-time collapse monitors on a batch of embeddings."""

from __future__ import annotations

import torch

from registry.sigreg import SIGReg, random_directions
from registry.spectrum import effective_rank


def collapse_monitors(embeddings: torch.Tensor, num_slices: int = 256) -> dict[str, float]:
    """Per-dimension std (min, mean), effective rank, and SIGReg of standardised-free embeddings."""
    embeddings = embeddings.float()
    std = embeddings.std(dim=0)
    directions = random_directions(embeddings.shape[1], num_slices, seed=0, device=embeddings.device)
    return {
        "std_min": float(std.min()),
        "std_mean": float(std.mean()),
        "effective_rank": effective_rank(embeddings),
        "sigreg": float(SIGReg(num_slices).to(embeddings.device)(embeddings, directions=directions)),
    }
