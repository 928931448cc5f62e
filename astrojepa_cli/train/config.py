"""The pretraining configuration: one plain dataclass, every field a CLI flag."""

from __future__ import annotations

import json
import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from astrojepa_cli.errors import UserError

PRECISIONS = ("auto", "bf16", "fp32")
DEVICES = ("auto", "cpu", "cuda", "mps")
NAN_POLICIES = ("stop", "skip")


@dataclass
class PretrainConfig:
    """Defaults follow LeJEPA (AdamW, lr 5e-4, wd 0.05, warm-up then cosine to lr/1000)."""

    data: str = "first-radio"
    arch: str = "vit-t"
    loss: str = "lejepa"
    masker: str | None = None
    lam: float = 0.05
    epochs: int = 10
    max_steps: int | None = None
    batch_size: int = 64
    lr: float = 5e-4
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    ema: float = 0.996
    img_size: int | None = None
    patch_size: int = 8
    global_views: int = 2
    local_views: int = 6
    global_size: int | None = None
    local_size: int | None = None
    precision: str = "auto"
    compile: bool = False
    seed: int = 0
    device: str = "auto"
    log_every: int = 10
    save_every: int = 0
    nan_policy: str = "stop"
    train_splits: tuple[str, ...] = ("train",)

    def validate(self) -> None:
        checks = [
            (self.epochs >= 1, "--epochs must be at least 1"),
            (self.max_steps is None or self.max_steps >= 1, "--max-steps must be at least 1"),
            (self.batch_size >= 2, "--batch-size must be at least 2"),
            (self.lr > 0, "--lr must be positive"),
            (self.weight_decay >= 0, "--weight-decay must be non-negative"),
            (0.0 <= self.lam <= 1.0, "--lam must lie in [0, 1]"),
            (self.log_every >= 1, "--log-every must be at least 1"),
            (self.save_every >= 0, "--save-every must be 0 (epoch ends only) or positive"),
            (self.precision in PRECISIONS, f"--precision must be one of {', '.join(PRECISIONS)}"),
            (self.device in DEVICES, f"--device must be one of {', '.join(DEVICES)}"),
            (self.nan_policy in NAN_POLICIES, f"--nan-policy must be one of {', '.join(NAN_POLICIES)}"),
            (self.global_views >= 1 and self.local_views >= 0, "--global-views must be >= 1 and --local-views >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise UserError(message)

    def to_json(self) -> dict:
        return asdict(self)


def read_config_file(path: Path) -> dict:
    """Keys of a TOML or JSON config file, checked against :class:`PretrainConfig`'s fields."""
    if not path.exists():
        raise UserError(f"config file not found: {path}")
    try:
        if path.suffix == ".toml":
            values = tomllib.loads(path.read_text())
        else:
            values = json.loads(path.read_text())
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"cannot parse config {path}: {exc}") from None
    known = {f.name for f in fields(PretrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise UserError(f"unknown key(s) in {path}: {', '.join(unknown)}")
    return values
