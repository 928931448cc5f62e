"""Collapse monitors on a batch of embeddings."""

from __future__ import annotations

import torch

from registry.sigreg import SIGReg, random_directions


def effective_rank(embeddings: torch.Tensor) -> float:
    r"""RankMe (Garrido et al. 2023): :math:`\exp(-\sum_k p_k \log p_k)`, :math:`p_k = \sigma_k / \sum_j \sigma_j`.

    ``σ`` are the singular values of the (N, D) embedding matrix; the result lies in [1, min(N, D)].
    """
    singular = torch.linalg.svdvals(embeddings.double())
    p = singular / singular.sum().clamp_min(1e-12) + 1e-12
    return float(torch.exp(-(p * p.log()).sum()))


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
