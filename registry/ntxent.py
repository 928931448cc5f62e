"""NT-Xent, the normalised temperature-scaled cross-entropy of SimCLR (Chen et al. 2020, arXiv 2002.05709)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from registry.collectives import world_cat, world_rank


def nt_xent(view_a: torch.Tensor, view_b: torch.Tensor, temperature: torch.Tensor | float) -> torch.Tensor:
    r"""NT-Xent over the 2N views of N images (SimCLR eq. 1), averaged over all 2N anchors.

    With :math:`z` the L2-normalised rows of ``view_a`` and ``view_b`` (both (N, D)),
    :math:`s_{ij} = z_i^\top z_j` and :math:`j(i)` the other view of anchor :math:`i`'s image:

    .. math:: \ell_i = -\log \frac{\exp(s_{i,j(i)}/\tau)}{\sum_{k \ne i} \exp(s_{ik}/\tau)}

    Under DDP the negatives come from every rank's views, so the loss is that of
    the global batch (each rank averages over its own anchors).
    """
    return F.cross_entropy(*nt_xent_logits(view_a, view_b, temperature))


def positive_retrieval(logits: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    r"""The fraction of anchors whose most similar other view is their positive: :math:`\frac{1}{2N}\sum_i
    [\arg\max_{k \ne i} s_{ik} = j(i)]`. Near 1, the pair is found without effort (chance is 1/(2N-1))."""
    return (logits.argmax(dim=1) == positives).float().mean()


def nt_xent_logits(view_a: torch.Tensor, view_b: torch.Tensor,
                   temperature: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The (2N, 2N·world) logits :math:`s_{ik}/\tau` of :func:`nt_xent`, self-similarities masked to -inf, and
    each anchor's positive column."""
    n = view_a.shape[0]
    anchors = F.normalize(torch.cat([view_a, view_b]).float(), dim=1)
    candidates = world_cat(anchors)
    offset = world_rank() * 2 * n
    logits = anchors @ candidates.T / temperature
    rows = torch.arange(2 * n, device=anchors.device)
    logits = logits.masked_fill(F.one_hot(rows + offset, candidates.shape[0]).bool(), float("-inf"))
    positives = offset + (rows + n) % (2 * n)
    return logits, positives
