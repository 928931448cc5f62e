"""VICReg: variance-invariance-covariance regularisation (Bardes, Ponce & LeCun 2022, arXiv 2105.04906)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from registry.collectives import world_cat


def _variance(z: torch.Tensor, eps: float) -> torch.Tensor:
    return F.relu(1.0 - torch.sqrt(z.var(dim=0) + eps)).mean()


def _covariance(z: torch.Tensor) -> torch.Tensor:
    centred = z - z.mean(dim=0)
    cov = centred.T @ centred / (z.shape[0] - 1)
    return (cov.square().sum() - cov.diagonal().square().sum()) / z.shape[1]


def vicreg_terms(view_a: torch.Tensor, view_b: torch.Tensor, eps: float = 1e-4) -> dict[str, torch.Tensor]:
    r"""The three VICReg terms of two (N, D) embedding batches (VICReg eqs. 1–5).

    .. math::

        s = \tfrac1{ND}\sum_n \|z_n - z'_n\|^2, \quad
        v = \tfrac1D \sum_d \max\!\big(0, 1 - \sqrt{\mathrm{Var}(z_{\cdot d}) + \epsilon}\big), \quad
        c = \tfrac1D \sum_{i \ne j} C(z)_{ij}^2

    ``variance`` and ``covariance`` are averaged (v) or summed (c) over the two
    views, and computed on the global batch under DDP.
    """
    invariance = F.mse_loss(view_a, view_b)
    view_a, view_b = world_cat(view_a), world_cat(view_b)
    variance = (_variance(view_a, eps) + _variance(view_b, eps)) / 2
    covariance = _covariance(view_a) + _covariance(view_b)
    return {"invariance": invariance, "variance": variance, "covariance": covariance}
