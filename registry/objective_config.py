"""Which objective a run trains: the encoder, loss and masker plugins and the options they are built with.

Plain data, with no torch, so a command can show its defaults in ``--help`` quickly.
The engine's ``PretrainConfig`` extends it with how to train; a run's manifest
records both, and :func:`registry.objective.build_objective` rebuilds the
objective from it (for training, or later to look inside a trained run).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

# The crop aspect-ratio range of every run recorded before it was an option.
LEGACY_CROP_RATIO = (3 / 4, 4 / 3)


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
    local_views: int | None = None
    global_size: int | None = None
    local_size: int | None = None
    global_scale: tuple[float, float] | None = None
    local_scale: tuple[float, float] | None = None
    view_noise: float = 0.0
    rotation: str = "quarter"
    translate: float = 0.0
    blur: float = 0.0
    flux_scale: tuple[float, float] | None = None
    reddening: float = 0.0
    extinction_coefficients: tuple[float, ...] | None = None
    band_gain: float = 0.0
    drop_bands: float = 0.0
    crop_ratio: tuple[float, float] = (1.0, 1.0)
    temperature: float | None = None
    proj_dim: int | None = None
    proj_hidden: int | None = None
    proj_depth: int | None = None
    pred_loss: str | None = None

    @classmethod
    def from_json(cls, values: dict):
        """The config recorded in a run manifest: keys of other configs ignored, lists back to tuples.

        Runs recorded before ``crop_ratio`` cropped with aspect ratios log-uniform in
        [3/4, 4/3], so they are rebuilt (and resumed) with that range."""
        known = {f.name for f in fields(cls)}
        values = {"crop_ratio": LEGACY_CROP_RATIO, **values}
        return cls(**lists_to_tuples({k: v for k, v in values.items() if k in known}))


def lists_to_tuples(values: dict) -> dict:
    """JSON and TOML give lists where a config holds tuples (no field holds a list)."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
