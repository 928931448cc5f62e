"""Exponential moving average (EMA) target networks, as in I-JEPA (Assran et al. 2023, arXiv 2301.08243).

The target encoder is not trained by gradients: after every optimiser step it
moves towards the online (context) encoder with a momentum that ramps linearly
from ``start`` (0.996) to ``end`` (1.0) over training, so the target freezes
at the end.
"""

from __future__ import annotations

import torch
from torch import nn

from registry import PluginError


def ema_momentum(step: int, total_steps: int, start: float = 0.996, end: float = 1.0) -> float:
    r"""Linear momentum schedule :math:`m_t = m_0 + (m_1 - m_0)\,t / T`, for step ``t`` of ``T``."""
    return start + (end - start) * min(1.0, step / max(1, total_steps))


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    r"""In place, for every parameter: :math:`\bar\theta \leftarrow m\,\bar\theta + (1 - m)\,\theta`.

    ``target`` and ``online`` must have the same architecture. Buffers are not
    averaged; the ViT encoders that use an EMA target have none that train.
    """
    target_params = list(target.parameters())
    online_params = [p.detach() for p in online.parameters()]
    if len(target_params) != len(online_params):
        raise PluginError("EMA target and online networks differ in their parameters")
    torch._foreach_lerp_(target_params, online_params, 1.0 - momentum)
