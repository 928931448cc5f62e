"""The pretraining configuration: one plain dataclass, every field a CLI flag."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_args, get_origin, get_type_hints

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from astrojepa_cli.errors import UserError
from astrojepa_cli.train.budget import parse_duration
from astrojepa_cli.train.method_options import check_method_options
from astrojepa_cli.train.tracking import check_tracker_names
from registry.objective_config import ObjectiveConfig, lists_to_tuples

# auto: bf16 on CUDA; on a CPU the faster of the two as measured (astrojepa_cli.train.precision).
PRECISIONS = ("auto", "bf16", "fp32")
# How a run's images become one embedding when the evaluating commands (probe, embed, anomalies,
# similar, plot) are not told: the encoder's own pooled output, or the last two stages' means
# concatenated (astrojepa_cli.evaluate.features.pooled). Recorded in the run's config.
EMBEDDING_POOLS = ("mean", "last2")
DEVICES = ("auto", "cpu", "cuda", "mps")
NAN_POLICIES = ("stop", "skip")
# (start, end) of the cosine weight-decay schedule: I-JEPA (Assran et al. 2023) ramps 0.04 -> 0.4;
# LeJEPA (Balestriero & LeCun 2025) keeps 0.05, and its official recipe keeps 5e-4 for ResNets
# (RESNET_WEIGHT_DECAY, for every encoder whose name starts with "resnet").
METHOD_WEIGHT_DECAY = {"lejepa": (0.05, 0.05), "ijepa": (0.04, 0.4), "ijepa-sigreg": (0.04, 0.4)}
RESNET_WEIGHT_DECAY = {"lejepa": (5e-4, 5e-4)}
# LeJEPA's projector hidden width before it followed the official 2048.
LEGACY_LEJEPA_PROJ_HIDDEN = 512


@dataclass
class PretrainConfig(ObjectiveConfig):
    """How to train the objective that :class:`ObjectiveConfig` names, on which data.

    Defaults follow LeJEPA (AdamW, lr 5e-4, wd 0.05, warm-up then cosine to lr/1000);
    unset weight decay follows the method's paper (see :data:`METHOD_WEIGHT_DECAY`).
    By default pretraining leaves a labelled store's test split out, so that probes score images the
    encoder never saw (``train_splits`` None; ``("all",)``: every split); the recorded run names the
    splits it used."""

    data: str = "first-radio"
    epochs: int = 10
    max_steps: int | None = None
    batch_size: int = 64
    lr: float = 5e-4
    weight_decay: float | None = None
    weight_decay_end: float | None = None
    warmup_epochs: float = 1.0
    budget: str | None = None
    precision: str = "auto"
    compile: bool = False
    seed: int = 0
    device: str = "auto"
    log_every: int = 10
    save_every: int = 0
    keep_encoders: bool = False
    keep_state: bool = False
    nan_policy: str = "stop"
    stretch: str = "none"
    embedding_pool: str = "mean"
    train_splits: tuple[str, ...] | None = None
    preset: str | None = None
    # Live dashboards (astrojepa_cli.train.tracking): tensorboard, mlflow, wandb; and MLflow's tracking URI.
    log: tuple[str, ...] = ()
    mlflow_uri: str | None = None

    @classmethod
    def from_json(cls, values: dict) -> "PretrainConfig":
        """The config recorded in a run manifest (runs recorded before ``train_splits`` trained on ``train``;
        LeJEPA runs recorded before ``crop_ratio`` had a 512-wide projector when ``proj_hidden`` was unset)."""
        values = {"train_splits": ("train",), **values}
        if "crop_ratio" not in values and values.get("loss") == "lejepa" and values.get("proj_hidden") is None:
            values["proj_hidden"] = LEGACY_LEJEPA_PROJ_HIDDEN
        return super().from_json(values)

    def validate(self) -> None:
        # Imported here, not at the top: reading the config (e.g. for --help) must not load torch.
        from astrojepa_cli.data.loader import STRETCHES
        from astrojepa_cli.data.store import SPLITS
        from registry.views import ROTATIONS

        checks = [
            (self.epochs >= 1, "--epochs must be at least 1"),
            (self.max_steps is None or self.max_steps >= 1, "--max-steps must be at least 1"),
            (self.batch_size >= 2, "--batch-size must be at least 2"),
            (self.lr > 0, "--lr must be positive"),
            (min(self.weight_decay or 0, self.weight_decay_end or 0) >= 0, "--weight-decay must be non-negative"),
            (0.0 <= self.lam <= 1.0, "--lam must lie in [0, 1]"),
            (self.log_every >= 1, "--log-every must be at least 1"),
            (self.save_every >= 0, "--save-every must be 0 (epoch ends only) or positive"),
            (self.precision in PRECISIONS, f"--precision must be one of {', '.join(PRECISIONS)}"),
            (self.device in DEVICES, f"--device must be one of {', '.join(DEVICES)}"),
            (self.stretch in STRETCHES, f"--stretch must be one of {', '.join(STRETCHES)}"),
            (self.embedding_pool in EMBEDDING_POOLS,
             f"--embedding-pool must be one of {', '.join(EMBEDDING_POOLS)}"),
            (self.nan_policy in NAN_POLICIES, f"--nan-policy must be one of {', '.join(NAN_POLICIES)}"),
            (self.global_views >= 1 and (self.local_views is None or self.local_views >= 0),
             "--global-views must be >= 1 and --local-views >= 0"),
            (all(_valid_scale(s) for s in (self.global_scale, self.local_scale)),
             "--global-scale and --local-scale must be two area fractions 0 < low <= high <= 1"),
            (self.view_noise >= 0, "--view-noise must be non-negative"),
            (self.rotation in ROTATIONS, f"--rotation must be one of {', '.join(ROTATIONS)}"),
            (0 <= self.translate <= 0.5, "--translate must lie in [0, 0.5] (a fraction of the image side)"),
            (self.blur >= 0, "--blur must be non-negative (the largest PSF sigma in pixels)"),
            (self.flux_scale is None or (len(self.flux_scale) == 2 and 0 < self.flux_scale[0] <= self.flux_scale[1]),
             "--flux-scale must be two factors 0 < low <= high"),
            (self.reddening >= 0, "--reddening must be non-negative (the largest colour excess E(B-V), magnitudes)"),
            (self.extinction_coefficients is None or self.reddening > 0,
             "--extinction-coefficients applies only with --reddening"),
            (all(r >= 0 for r in self.extinction_coefficients or ()),
             "--extinction-coefficients must be non-negative (A_band / E(B-V) of each channel)"),
            (self.band_gain >= 0, "--band-gain must be non-negative (the std of the log of each band's gain)"),
            (0 <= self.drop_bands <= 1, "--drop-bands must be a probability in [0, 1]"),
            (len(self.crop_ratio) == 2 and 0 < self.crop_ratio[0] <= self.crop_ratio[1],
             "--crop-ratio must be two aspect ratios 0 < low <= high (1 1 keeps every crop square)"),
            (self.temperature is None or self.temperature > 0, "--temperature must be positive"),
            (all(v is None or v >= 1 for v in (self.proj_dim, self.proj_hidden, self.proj_depth)),
             "--proj-dim, --proj-hidden and --proj-depth must be at least 1"),
            (self.train_splits is None or (len(self.train_splits) >= 1 and set(self.train_splits) <= {*SPLITS, "all"}),
             f"--train-splits takes store splits: a comma list of {', '.join(SPLITS)}, or all"),
        ]
        for ok, message in checks:
            if not ok:
                raise UserError(message)
        if self.budget is not None:
            parse_duration(self.budget)
        check_method_options(self)
        check_tracker_names(self.log)

    def with_method_defaults(self) -> "PretrainConfig":
        """Fill unset weight decay from the method's paper (I-JEPA ramps it; LeJEPA keeps it constant,
        5e-4 for ResNets)."""
        by_method = RESNET_WEIGHT_DECAY if self.arch.startswith("resnet") else {}
        start, end = by_method.get(self.loss) or METHOD_WEIGHT_DECAY.get(self.loss, METHOD_WEIGHT_DECAY["lejepa"])
        weight_decay = start if self.weight_decay is None else self.weight_decay
        if self.weight_decay_end is not None:
            end = self.weight_decay_end
        elif self.weight_decay is not None:
            end = self.weight_decay
        return replace(self, weight_decay=weight_decay, weight_decay_end=end)

    def to_json(self) -> dict:
        return asdict(self)


def _valid_scale(scale: tuple[float, float] | None) -> bool:
    return scale is None or (len(scale) == 2 and 0 < scale[0] <= scale[1] <= 1)


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
    return checked_values(values, str(path))


def checked_values(values: dict, source: str) -> dict:
    """Config ``values`` from a file (``source`` names it), checked against :class:`PretrainConfig`'s
    field names and types; lists become the tuples the config holds."""
    known = {f.name for f in fields(PretrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise UserError(f"unknown key(s) in {source}: {', '.join(unknown)}")
    hints = get_type_hints(PretrainConfig)
    for key, value in values.items():
        if not _has_type(value, hints[key]):
            raise UserError(f"{source}: '{key}' must be {_type_name(hints[key])}, got {json.dumps(value)}")
    return lists_to_tuples(values)


def _has_type(value: Any, hint: Any) -> bool:
    """Whether a JSON/TOML value fits a field's type hint (lists stand for tuples; ints for floats)."""
    origin, arguments = get_origin(hint), get_args(hint)
    if origin in (Union, UnionType):
        return any(_has_type(value, option) for option in arguments)
    if hint is type(None):
        return value is None
    if origin is tuple:
        if not isinstance(value, list):
            return False
        if len(arguments) == 2 and arguments[1] is Ellipsis:
            return all(_has_type(item, arguments[0]) for item in value)
        return len(value) == len(arguments) and all(map(_has_type, value, arguments))
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return not isinstance(hint, type) or isinstance(value, hint)  # a hint this check does not know passes


def _type_name(hint: Any) -> str:
    origin, arguments = get_origin(hint), get_args(hint)
    if origin in (Union, UnionType):
        return " or ".join(_type_name(option) for option in arguments)
    if hint is type(None):
        return "null"
    if origin is tuple:
        return "a list" if arguments[-1] is Ellipsis else f"a list of {len(arguments)} numbers"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(hint, str(hint))
