"""Projection heads that map an encoder's embedding into the space where a loss is computed."""

from __future__ import annotations

from torch import nn

from registry import PluginError
from registry.batchnorm import GlobalBatchNorm1d


def mlp_projector(in_dim: int, hidden_dim: int, out_dim: int, depth: int = 3) -> nn.Sequential:
    """MLP of ``depth`` linear layers with BatchNorm and ReLU between them; the default three layers
    are the projector of LeJEPA, SimCLR (v2) and VICReg, and ``depth=1`` is a linear projection.

    The BatchNorm statistics span every DDP rank (:class:`GlobalBatchNorm1d`, like
    SimCLR's global BN), so the loss does not depend on how the batch is split.
    """
    if depth < 1:
        raise PluginError(f"a projector needs at least one layer, got depth {depth}")
    layers: list[nn.Module] = []
    width = in_dim
    for _ in range(depth - 1):
        layers += [nn.Linear(width, hidden_dim), GlobalBatchNorm1d(hidden_dim), nn.ReLU(inplace=True)]
        width = hidden_dim
    return nn.Sequential(*layers, nn.Linear(width, out_dim))
