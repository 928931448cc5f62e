"""The settings of ``probe --finetune``, free of torch so that the CLI can show their defaults in ``--help``."""

from __future__ import annotations

from dataclasses import dataclass

from astrojepa_cli.errors import UserError


@dataclass
class FinetuneConfig:
    """Small defaults so a CPU finishes in minutes; raise ``epochs`` for real comparisons."""

    epochs: int = 5
    batch_size: int = 32
    lr: float = 1e-4
    weight_decay: float = 0.05
    patience: int = 2
    valid_fraction: float = 0.2
    # The share of the labelled train (and valid) images both models learn from: 0.01, 0.1 and 1.0 give
    # the 1 %, 10 % and 100 % comparison of pretrained and from-scratch training. The test split stays whole.
    label_fraction: float = 1.0

    def validate(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.patience < 1 or self.lr <= 0:
            raise UserError("--finetune-epochs, batch size and patience must be at least 1 and the lr positive")
        if not 0 < self.label_fraction <= 1:
            raise UserError(f"--finetune-labels must be a fraction in (0, 1], got {self.label_fraction}")
