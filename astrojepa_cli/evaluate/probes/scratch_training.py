"""The settings of the from-scratch few-shot baseline (``probe --shots --scratch``), free of torch so that
the CLI can show their defaults in ``--help``."""

from __future__ import annotations

from dataclasses import dataclass

from astrojepa_cli.errors import UserError


@dataclass(frozen=True)
class ScratchTraining:
    """The schedule of the from-scratch baseline: full-batch steps, AdamW, cosine decay to zero."""

    steps: int = 200
    lr: float = 1e-3
    weight_decay: float = 0.05
    crop_scale: tuple[float, float] = (0.5, 1.0)

    def validate(self) -> None:
        if self.steps < 1 or self.lr <= 0 or self.weight_decay < 0 or not 0 < self.crop_scale[0] <= self.crop_scale[1] <= 1:
            raise UserError("the from-scratch baseline needs steps >= 1, lr > 0, weight decay >= 0 and a crop "
                            "scale within (0, 1]")
