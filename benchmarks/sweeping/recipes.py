"""A sweep file: its settings and recipes, parsed and checked, and each recipe's pretrain config."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator

from astrojepa_cli.errors import UserError
from astrojepa_cli.evaluate.features import FEATURE_NORMS, POOLS
from astrojepa_cli.train import budget
from astrojepa_cli.train.config import PretrainConfig, checked_values
from astrojepa_cli.train.presets import resolve_config

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

RANKABLE = ("linear", "knn-20", "10-shot")
# Recipe keys that change how the features are probed, not how they are learnt; recipes that
# differ only in these share one pretraining. Values as for 'astrojepa probe --pool/--feature-norm'.
PROBE_OPTIONS = {"probe_pool": "mean", "probe_norm": "standard"}


@dataclass
class Sweep:
    """A parsed sweep file: where to run, how long, and the recipes."""

    datasets: list[str]
    seeds: list[int]
    length: dict  # exactly one of {"budget": "3m"}, {"steps": N}, {"epochs": N}
    clock: str = "wall"
    rank_by: str = "linear"
    device: str = "cpu"
    tta: str = "d4"
    scratch_steps: int = 200  # full-batch steps of the from-scratch few-shot baseline
    recipes: list[tuple[str, dict]] = field(default_factory=list)


def read_sweep(path: Path) -> Sweep:
    """Parse and check a sweep file; every recipe's options are checked as ``pretrain`` would."""
    if not path.exists():
        raise UserError(f"sweep file not found: {path}")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"cannot parse {path}: {exc}") from None
    settings = raw.get("sweep", {})
    lengths = {k: settings[k] for k in ("budget", "steps", "epochs") if k in settings}
    if len(lengths) != 1:
        raise UserError(f"{path}: [sweep] needs exactly one of budget, steps or epochs")
    if not settings.get("datasets"):
        raise UserError(f"{path}: [sweep] needs datasets = [...] (labelled store names)")
    if settings.get("rank_by", "linear") not in RANKABLE:
        raise UserError(f"{path}: rank_by must be one of {', '.join(RANKABLE)}")
    if settings.get("clock", "wall") not in ("wall", "cpu"):
        raise UserError(f"{path}: clock must be 'wall' or 'cpu'")
    if "budget" in lengths:
        budget.parse_duration(lengths["budget"])
    scratch_steps = settings.get("scratch_steps", Sweep.scratch_steps)
    if not isinstance(scratch_steps, int) or isinstance(scratch_steps, bool) or scratch_steps < 1:
        raise UserError(f"{path}: scratch_steps must be a whole number of steps, at least 1")
    sweep = Sweep(datasets=list(settings["datasets"]), seeds=list(settings.get("seeds", [0])), length=lengths,
                  clock=settings.get("clock", "wall"), rank_by=settings.get("rank_by", "linear"),
                  device=settings.get("device", "cpu"), tta=settings.get("tta", "d4"), scratch_steps=scratch_steps)
    base = raw.get("base", {})
    for entry in raw.get("run", []):
        entry = dict(entry)
        name = entry.pop("name", None) or ",".join(f"{k}={v}" for k, v in entry.items()) or "base"
        sweep.recipes.append((name, {**base, **entry}))
    grid = raw.get("grid", {})
    if grid:
        keys = sorted(grid)
        for values in itertools.product(*(grid[k] for k in keys)):
            choice = dict(zip(keys, values))
            sweep.recipes.append((",".join(f"{k}={v}" for k, v in choice.items()), {**base, **choice}))
    if not sweep.recipes:
        raise UserError(f"{path}: no recipes; add [[run]] entries or a [grid]")
    names = [name for name, _ in sweep.recipes]
    if len(set(names)) != len(names):
        raise UserError(f"{path}: recipe names must be unique")
    for name, options in sweep.recipes:
        recipe_config(sweep, options, sweep.datasets[0], sweep.seeds[0], check_only=True, name=name)
    return sweep


def job_key(name: str, dataset: str, seed: int) -> str:
    """The key of one job's row in ``rows.jsonl``: a recipe on one dataset with one pretraining seed."""
    return f"{name}/{dataset}/seed{seed}"


def jobs(sweep: Sweep) -> Iterator[tuple[str, dict, str, int]]:
    """Every job (recipe name, options, dataset, seed) in the order the sweep runs them. Seeds are
    outermost: a sweep stopped part-way has every recipe at its first seeds, a fair ranking."""
    for seed in sweep.seeds:
        for name, options in sweep.recipes:
            for dataset in sweep.datasets:
                yield name, options, dataset, seed


def split_probe_options(options: dict, embedding_pool: str = "mean") -> tuple[dict, dict]:
    """A recipe's pretrain options, and how its features are probed (:data:`PROBE_OPTIONS`, defaults filled;
    an unset ``probe_pool`` is the run's ``embedding_pool``, as ``astrojepa probe`` would pool it)."""
    pretraining = {k: v for k, v in options.items() if k not in PROBE_OPTIONS}
    defaults = {**PROBE_OPTIONS, "probe_pool": embedding_pool}
    return pretraining, {k: options.get(k, default) for k, default in defaults.items()}


def recipe_config(sweep: Sweep, options: dict, dataset: str, seed: int, check_only: bool = False,
                  name: str = "") -> PretrainConfig:
    """The pretrain config of one recipe on one dataset and seed (preset < recipe options)."""
    pretraining, probing = split_probe_options(options)
    if probing["probe_pool"] not in POOLS or probing["probe_norm"] not in FEATURE_NORMS:
        raise UserError(f"recipe '{name}': probe_pool must be one of {', '.join(POOLS)} and probe_norm one of "
                        f"{', '.join(FEATURE_NORMS)}")
    values = resolve_config(checked_values(pretraining, f"recipe '{name}'"), {})
    # Pretraining reads the train split alone unless a recipe says otherwise: no test image is seen, even unlabelled.
    config = PretrainConfig(**{"train_splits": ("train",), **values, "data": dataset, "seed": seed,
                               "device": sweep.device})
    length = sweep.length
    if "budget" in length:
        config = replace(config, budget=str(length["budget"]))
    elif "steps" in length:
        config = replace(config, max_steps=int(length["steps"]), epochs=10**6)
    else:
        config = replace(config, epochs=int(length["epochs"]))
    if check_only:
        config.validate()
    return config
