"""A study's rows with paired-bootstrap 95 % intervals: each recipe's linear and kNN balanced accuracy,
and its difference from the random-weights and pixel baselines scored on the same test images.

The rows carry their test predictions and the results folder each dataset's test labels
(:meth:`sweeping.results.Results.test_labels`), so the intervals are computed from the committed
files alone, with :mod:`astrojepa_cli.evaluate.probes.bootstrap` (2,000 resamples, fixed seed).
"""

from __future__ import annotations

import numpy as np

from astrojepa_cli.evaluate.probes.bootstrap import paired_difference_interval
from sweeping.recipes import Sweep

INTERVAL_PROBES = ("linear", "knn-20")


def difference(labels: np.ndarray, row_scores: dict, baseline_scores: dict | None) -> dict | None:
    """The recipe's balanced accuracy minus the baseline's, with its paired 95 % interval; None without
    both predictions."""
    if baseline_scores is None or "test_predictions" not in row_scores or "test_predictions" not in baseline_scores:
        return None
    mine, theirs = np.asarray(row_scores["test_predictions"]), np.asarray(baseline_scores["test_predictions"])
    if len(mine) != len(labels) or len(theirs) != len(labels):
        return None
    low, high = paired_difference_interval(labels, mine, theirs)
    return {"value": row_scores["balanced_accuracy"] - baseline_scores["balanced_accuracy"], "ci": [low, high]}


def row_intervals(row: dict, baselines: dict[str, dict], labels: np.ndarray) -> dict:
    """Per probe: the balanced accuracy with its interval, and the differences from random weights and pixels."""
    measured = {}
    for probe in INTERVAL_PROBES:
        scores = row["scores"][probe]
        measured[probe] = {
            "value": scores["balanced_accuracy"], "ci": scores.get("balanced_accuracy_ci"),
            **{against: difference(labels, scores, (baselines.get(row["baselines"][key]) or {}).get("scores", {})
                                   .get(probe))
               for against, key in (("random", "random_weights"), ("pixels", "pixels"))},
        }
    return measured


def format_value(cell: dict | None, signed: bool = False) -> str:
    """``0.712 [0.680, 0.744]``, signed for differences; – where there is nothing."""
    if cell is None:
        return "–"
    sign = "+" if signed else ""
    text = f"{cell['value']:{sign}.3f}"
    return text + (f" [{cell['ci'][0]:{sign}.3f}, {cell['ci'][1]:{sign}.3f}]" if cell.get("ci") else "")


def intervals_markdown(sweep: Sweep, rows: list[dict], test_labels: dict[str, list[int]]) -> str:
    """Per dataset, a table of every recipe run: linear and kNN balanced accuracy with their intervals and
    their paired differences from random weights and pixels."""
    baselines = {r["key"]: r for r in rows if r["kind"] == "baseline"}
    order = {name: i for i, (name, _) in enumerate(sweep.recipes)}
    lines = []
    for dataset in sweep.datasets:
        here = sorted((r for r in rows if r["kind"] == "recipe" and r["dataset"] == dataset),
                      key=lambda r: (order.get(r["name"], 1e9), r["seed"]))
        if not here or dataset not in test_labels:
            continue
        labels = np.asarray(test_labels[dataset])
        lines += [f"### Intervals on {dataset} ({len(labels):,} labelled test images)", "",
                  "Balanced accuracy with its 95 % bootstrap interval, and the paired-bootstrap 95 % interval of "
                  "the difference from the same network with random weights (the stronger init) and from the "
                  "pixels, on the same test images.", "",
                  "| recipe | seed | steps | linear | − random | − pixels | kNN | − random | − pixels |",
                  "|---|---:|---:|---|---|---|---|---|---|"]
        for row in here:
            measured = row_intervals(row, baselines, labels)
            cells = [cell for probe in INTERVAL_PROBES for cell in (
                format_value(measured[probe]), format_value(measured[probe]["random"], signed=True),
                format_value(measured[probe]["pixels"], signed=True))]
            lines.append(f"| {row['name']} | {row['seed']} | {row['steps']} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)
