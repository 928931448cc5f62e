"""The spectrum of an embedding matrix: how many directions it really uses."""

from __future__ import annotations

import torch


def effective_rank(embeddings: torch.Tensor) -> float:
    r"""RankMe (Garrido et al. 2023): :math:`\exp(-\sum_k p_k \log p_k)`, :math:`p_k = \sigma_k / \sum_j \sigma_j`.

    ``σ`` are the singular values of the (N, D) embedding matrix; the result lies in [1, min(N, D)].
    """
    singular = torch.linalg.svdvals(embeddings.double())
    p = singular / singular.sum().clamp_min(1e-12) + 1e-12
    return float(torch.exp(-(p * p.log()).sum()))
