"""Projection heads that map an encoder's embedding into the space where a loss is computed."""

from __future__ import annotations

from torch import nn

from registry.batchnorm import GlobalBatchNorm1d


def mlp_projector(in_dim: int, hidden_dim: int, out_dim: int) -> nn.Sequential:
    """Three-layer MLP with BatchNorm, the projector of LeJEPA, SimCLR (v2) and VICReg.

    The BatchNorm statistics span every DDP rank (:class:`GlobalBatchNorm1d`, like
    SimCLR's global BN), so the loss does not depend on how the batch is split.
    """
    return nn.Sequential(
        nn.Linear(in_dim, hidden_dim),
        GlobalBatchNorm1d(hidden_dim),
        nn.ReLU(inplace=True),
        nn.Linear(hidden_dim, hidden_dim),
        GlobalBatchNorm1d(hidden_dim),
        nn.ReLU(inplace=True),
        nn.Linear(hidden_dim, out_dim),
    )
