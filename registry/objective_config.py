"""Which objective a run trains: the encoder, loss and masker plugins and the options they are built with.

Plain data, with no torch, so a command can show its defaults in ``--help`` quickly.
The engine's ``PretrainConfig`` extends it with how to train; a run's manifest
records both, and :func:`registry.objective.build_objective` rebuilds the
objective from it (for training, or later to look inside a trained run).
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass
class ObjectiveConfig:
    """Plugin names and the options the engine offers them; ``None`` leaves a plugin's own default."""

    arch: str = "vit-t"
    loss: str = "lejepa"
    masker: str | None = None
    lam: float = 0.05
    ema: float = 0.996
    img_size: int | None = None
    patch_size: int = 8
    global_views: int = 2
    local_views: int = 6
    global_size: int | None = None
    local_size: int | None = None
    global_scale: tuple[float, float] | None = None
    local_scale: tuple[float, float] | None = None
    view_noise: float = 0.0
    rotation: str = "quarter"
    translate: float = 0.0
    blur: float = 0.0
    flux_scale: tuple[float, float] | None = None
    temperature: float | None = None
    proj_dim: int | None = None
    proj_hidden: int | None = None
    proj_depth: int | None = None
    pred_loss: str | None = None

    @classmethod
    def from_json(cls, values: dict):
        """The config recorded in a run manifest: keys of other configs ignored, lists back to tuples."""
        known = {f.name for f in fields(cls)}
        return cls(**lists_to_tuples({k: v for k, v in values.items() if k in known}))


def lists_to_tuples(values: dict) -> dict:
    """JSON and TOML give lists where a config holds tuples (no field holds a list)."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
