"""Learning-rate and weight-decay schedules (functions of the step, so resume is exact)."""

from __future__ import annotations

import math


def warmup_cosine(step: int, total_steps: int, warmup_steps: int, peak: float, final: float) -> float:
    r"""Linear warm-up from 0 to ``peak``, then cosine decay to ``final``.

    .. math:: \eta_t = \eta_{final} + \tfrac12(\eta_{peak}-\eta_{final})\left(1+\cos\pi\frac{t-t_w}{T-t_w}\right)
    """
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return final + 0.5 * (peak - final) * (1 + math.cos(math.pi * min(1.0, progress)))


def cosine_ramp(step: int, total_steps: int, start: float, end: float) -> float:
    """Cosine interpolation from ``start`` at step 0 to ``end`` at ``total_steps`` (I-JEPA's weight decay)."""
    progress = min(1.0, step / max(1, total_steps))
    return end + 0.5 * (start - end) * (1 + math.cos(math.pi * progress))
