"""Compare runs: what differs in their configs, how they score, and whether training loss predicts the score."""

from __future__ import annotations

import math

from astrojepa_cli.errors import UserError
from astrojepa_cli.evaluate.probes.context import plain_key
from astrojepa_cli.runs import Run

HEADLINE_METRICS = ("balanced_accuracy", "rmse", "roc_auc")
MIN_RUNS_FOR_SPEARMAN = 3


def config_differences(runs: list[Run]) -> dict[str, list]:
    """Config keys whose values are not the same in every run, with each run's value (None if absent)."""
    configs = [r.manifest.get("config", {}) for r in runs]
    keys = sorted({k for c in configs for k in c})
    differing = {k: [c.get(k) for c in configs] for k in keys}
    return {k: values for k, values in differing.items() if any(v != values[0] for v in values)}


def headline(record: dict) -> tuple[str, float] | None:
    """The one number that summarises an evaluation record, with its name; None for records without one.

    Fine-tuning gives the pretrained model's number; curves give their last (largest) point.
    """
    for metric in HEADLINE_METRICS:
        if isinstance(record.get(metric), (int, float)):
            return metric, float(record[metric])
    if isinstance(record.get("evaluation"), dict):
        return headline(record["evaluation"])
    if isinstance(record.get("pretrained"), dict):
        found = headline(record["pretrained"])
        return (f"pretrained {found[0]}", found[1]) if found else None
    if record.get("curve"):
        point = record["curve"][-1]
        found = headline(point)
        axis = next(k for k in point if k in ("shots", "fraction"))
        return (f"{found[0]} at {axis}={point[axis]}", found[1]) if found else None
    return None


def evaluation_table(runs: list[Run]) -> dict[str, dict]:
    """For every evaluation key any run has: its headline metric name and each run's value (None if absent)."""
    keys = sorted({k for r in runs for k in r.manifest.get("evaluations", {})})
    table = {}
    for key in keys:
        found = [headline(r.manifest.get("evaluations", {}).get(key, {})) for r in runs]
        names = {f[0] for f in found if f}
        if names:
            table[key] = {"metric": " / ".join(sorted(names)), "values": [f[1] if f else None for f in found]}
    return table


def final_loss(run: Run) -> float | None:
    return (run.manifest.get("result") or {}).get("final_loss")


def compare_runs(runs: list[Run]) -> dict:
    """Config differences, final training losses and evaluation headlines of ``runs``, in the given order."""
    if len(runs) < 2:
        raise UserError("give at least two runs to compare")
    return {"runs": [r.id for r in runs], "final_loss": [final_loss(r) for r in runs],
            "config_differences": config_differences(runs), "evaluations": evaluation_table(runs)}


def loss_metric_spearman(runs: list[Run], evaluation: str | None, metric: str) -> dict:
    r"""Spearman's ρ between each run's final training loss and ``metric`` of evaluation ``evaluation``.

    ρ is Pearson's correlation of the ranks (scipy.stats.spearmanr). LeJEPA (Balestriero
    & LeCun 2025) reports that the training loss ranks models like their probe accuracy
    does, which is ρ near -1 here: a lower loss, a higher accuracy. ``evaluation``
    defaults to each run's plain ``astrojepa probe``: the linear probe of its own embedding on its
    training data (``<dataset>/linear``, ``<dataset>/linear-last2`` for a ``last2`` run).
    """
    if len(runs) < MIN_RUNS_FOR_SPEARMAN:
        raise UserError(f"--spearman needs at least {MIN_RUNS_FOR_SPEARMAN} runs, got {len(runs)}")
    losses, values = [], []
    for run in runs:
        key = evaluation or plain_key(run.manifest, run.manifest.get("dataset", {}).get("name"))
        record = run.manifest.get("evaluations", {}).get(key)
        if record is None or not isinstance(record.get(metric), (int, float)):
            raise UserError(f"run {run.id} has no '{metric}' in evaluation '{key}'; run 'astrojepa probe {run.id}' first")
        if final_loss(run) is None:
            raise UserError(f"run {run.id} has no final training loss (status: {run.manifest.get('status')})")
        losses.append(final_loss(run))
        values.append(float(record[metric]))
    return {**rank_correlation(losses, values), "metric": metric, "final_loss": losses, "values": values,
            "evaluation": evaluation or "<dataset>/linear of the run's embedding"}


def rank_correlation(losses: list[float], values: list[float]) -> dict:
    r"""Spearman's ρ (Pearson's correlation of the ranks, scipy.stats.spearmanr) of losses against metric values."""
    from scipy.stats import spearmanr

    if len(set(losses)) < 2 or len(set(values)) < 2:
        raise UserError("the losses or the metric values are all equal, so Spearman's rho is undefined")
    rho, p_value = spearmanr(losses, values)
    return {"rho": float(rho), "p_value": float(p_value) if math.isfinite(p_value) else None, "n": len(losses)}


def run_labels(runs: list[Run]) -> list[str]:
    """Short legend labels: the differing config values (e.g. ``lam=0.6``), else the run ids."""
    differences = config_differences(runs)
    if not differences:
        return [r.id for r in runs]
    return [", ".join(f"{k}={v[i]}" for k, v in list(differences.items())[:3]) for i in range(len(runs))]
