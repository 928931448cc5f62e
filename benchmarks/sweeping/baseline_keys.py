"""The names of a sweep's baseline rows: what each embeds or trains, at which size, and how it is probed.

A baseline row is scored once and shared by every recipe row that names it, so equal keys must
mean equal baselines.
"""

from __future__ import annotations

from sweeping.recipes import PROBE_OPTIONS


def baseline_key(kind: str, dataset: str, config: dict, seed: int, probing: dict) -> str:
    """The key of a frozen baseline row (``random`` weights or ``pixels``), probed as the recipe is."""
    img = config.get("img_size") or "store"
    probe = "".join(f"/{probing[k]}" for k in PROBE_OPTIONS if probing[k] != PROBE_OPTIONS[k]
                    and not (kind == "pixels" and k == "probe_pool"))
    if kind == "pixels":
        return f"pixels/{dataset}/{img}px/{config.get('stretch', 'none')}{probe}"
    return f"random/{dataset}/{config['arch']}/{img}px/p{config.get('patch_size')}/seed{seed}{probe}"


def scratch_key(dataset: str, config: dict) -> str:
    """The key of the from-scratch few-shot baseline: the architecture and input trained on the labels
    alone (its draws and initialisations are its own, so no pretraining seed or probe choice enters)."""
    img = config.get("img_size") or "store"
    return f"scratch/{dataset}/{config['arch']}/{img}px/p{config.get('patch_size')}/{config.get('stretch', 'none')}"


def baselines_of(row: dict) -> dict[str, str]:
    """Every baseline a recipe row is compared with, by kind: ``random_weights``, ``pixels``, ``scratch``."""
    return {**row["baselines"], "scratch": scratch_key(row["dataset"], row["config"])}
