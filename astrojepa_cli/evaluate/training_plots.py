"""Figures of training: loss terms per step, collapse monitors per epoch, and several runs overlaid."""

from __future__ import annotations

import json
import math
from pathlib import Path

from astrojepa_cli.errors import UserError
from astrojepa_cli.evaluate.plots import plt
from astrojepa_cli.runs import Run

NOT_LOSS_TERMS = ("step", "epoch", "lr", "weight_decay", "images_per_second")
MONITORS = {
    "effective_rank": "effective rank (RankMe)",
    "online_probe_accuracy": "online-probe accuracy",
    "std_min": "min per-dim std",
    "std_mean": "mean per-dim std",
    "sigreg": "SIGReg statistic",
}


def read_metrics(path: Path) -> list[dict]:
    if not path.exists():
        raise UserError(f"no metrics yet at {path}; has the run taken --log-every steps?")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def loss_terms(rows: list[dict]) -> list[str]:
    """The logged loss terms: ``loss`` first, then e.g. the prediction and SIGReg terms, each numeric."""
    terms = [k for k in rows[0] if k not in NOT_LOSS_TERMS and isinstance(rows[0][k], (int, float))]
    return sorted(terms, key=lambda t: t != "loss")


def stacked_series(panels: list[tuple[str, list, list, str]], x_label: str, title: str, marker: str | None = None):
    """One axis per ``(y_label, xs, ys, legend)`` panel, stacked with a shared x axis."""
    figure, axes = plt.subplots(len(panels), 1, figsize=(7, 2.3 * len(panels)), sharex=True, squeeze=False)
    for axis, (y_label, xs, ys, legend) in zip(axes[:, 0], panels):
        axis.plot(xs, ys, marker=marker, label=legend)
        axis.set_ylabel(y_label)
        axis.legend(loc="best")
        axis.grid(alpha=0.3)
    axes[-1, 0].set_xlabel(x_label)
    axes[0, 0].set_title(title)
    return figure


def loss_curves(rows: list[dict], title: str):
    """Total loss, then each loss term on its own axis, against the step."""
    steps = [r["step"] for r in rows]
    panels = [(term, steps, [r.get(term, math.nan) for r in rows], term) for term in loss_terms(rows)]
    return stacked_series(panels, "step", title)


def present_monitors(epochs: list[dict]) -> list[str]:
    return [key for key in MONITORS if any(key in row for row in epochs)]


def training_monitors(epochs: list[dict], title: str):
    """Each collapse monitor found in the manifest's ``epochs`` rows (effective rank, online probe, ...) per epoch."""
    keys = present_monitors(epochs)
    if not keys:
        raise UserError("the run has no per-epoch monitors yet (they are written at the end of each epoch)")
    panels = []
    for key in keys:
        rows = [row for row in epochs if key in row]
        panels.append((key, [row["epoch"] + 1 for row in rows], [row[key] for row in rows], MONITORS[key]))
    return stacked_series(panels, "epoch", title, marker="o")


def compare_figure(runs: list[Run], labels: list[str], title: str):
    """Several runs overlaid: every loss term per step and, where logged, effective rank per epoch."""
    metrics = [read_metrics(r.metrics_path) for r in runs]
    terms = []
    for rows in metrics:
        terms += [t for t in (loss_terms(rows) if rows else []) if t not in terms]
    with_rank = any("effective_rank" in row for r in runs for row in r.manifest.get("epochs", []))
    panels = terms + (["effective_rank"] if with_rank else [])
    if not panels:
        raise UserError("none of the runs has logged metrics yet")
    figure, axes = plt.subplots(len(panels), 1, figsize=(7, 2.4 * len(panels)), squeeze=False)
    for axis, panel in zip(axes[:, 0], panels):
        for run, rows, label in zip(runs, metrics, labels):
            if panel == "effective_rank":
                points = [(e["epoch"] + 1, e[panel]) for e in run.manifest.get("epochs", []) if panel in e]
            else:
                points = [(r["step"], r[panel]) for r in rows if panel in r]
            if points:
                axis.plot(*zip(*points), marker="o" if panel == "effective_rank" else None, label=label)
        axis.set_xlabel("epoch" if panel == "effective_rank" else "step")
        axis.set_ylabel(panel)
        axis.grid(alpha=0.3)
        axis.legend(loc="best", fontsize=7)
    axes[0, 0].set_title(title)
    figure.tight_layout()
    return figure
