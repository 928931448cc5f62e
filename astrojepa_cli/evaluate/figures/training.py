"""Figures of training: loss terms per step, collapse monitors per epoch, and several runs overlaid."""

from __future__ import annotations

import json
import math
from pathlib import Path

from matplotlib.ticker import MaxNLocator

from astrojepa_cli.errors import UserError
from astrojepa_cli.evaluate.figures.labels import FewestDigits, method_name
from astrojepa_cli.evaluate.figures.plotting import plt
from astrojepa_cli.runs import Run

# A curve with fewer logged points than this gets a marker at each.
FEW_POINTS = 20
NOT_LOSS_TERMS = ("step", "epoch", "lr", "weight_decay", "images_per_second")
TERM_LABELS = {
    "loss": "total loss",
    "pred": "prediction loss",
    "sigreg": "SIGReg statistic",
    "invariance": "invariance term",
    "variance": "variance term",
    "covariance": "covariance term",
    "temperature": "softmax temperature",
    "retrieval": "positive-pair retrieval (top-1)",
    "projection_var": "projection variance",
    "target_var": "target variance",
}
MONITORS = {
    "effective_rank": "effective rank (RankMe)",
    "online_probe_accuracy": "online-probe accuracy",
    "std_min": "smallest per-dimension std",
    "std_mean": "mean per-dimension std",
    "sigreg": "SIGReg statistic",
    # How easily the task is solved on a fixed batch (astrojepa_cli/train/shortcut_monitor.py).
    "shortcut_retrieval": "positive-pair retrieval (top-1)",
    "shortcut_loss_ratio": "NT-Xent / log(2N-1)",
    "shortcut_invariance_ratio": "invariance / projection variance",
    "shortcut_prediction_ratio": "prediction loss / target variance",
}


def term_label(term: str) -> str:
    """A logged loss term in words: ``sigreg`` -> ``SIGReg statistic``."""
    return TERM_LABELS.get(term, term.replace("_", " "))


def integer_ticks(axis) -> None:
    """Steps and epochs are counts: whole-number ticks only (call it after plotting; a range holding
    fewer than two whole numbers, such as a single point's, is widened to ±1 around its middle)."""
    low, high = axis.get_xlim()
    if math.floor(high) - math.ceil(low) < 1:
        middle = round((low + high) / 2)
        axis.set_xlim(middle - 1, middle + 1)
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))


def read_metrics(path: Path) -> list[dict]:
    if not path.exists():
        raise UserError(f"no metrics yet at {path}; has the run taken --log-every steps?")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def loss_terms(rows: list[dict]) -> list[str]:
    """The logged loss terms: ``loss`` first, then e.g. the prediction and SIGReg terms, each numeric; a term
    equal to the total loss at every row (I-JEPA's prediction loss) is the same curve and is left out."""
    terms = [k for k in rows[0] if k not in NOT_LOSS_TERMS and isinstance(rows[0][k], (int, float))]
    terms = [t for t in terms if t == "loss" or any(row.get(t) != row.get("loss") for row in rows)]
    return sorted(terms, key=lambda t: t != "loss")


def marker_for(points: int) -> str | None:
    """Dots on a curve of few points (a short run), so each logged value shows; none on a dense one."""
    return "o" if points < FEW_POINTS else None


def stacked_series(panels: list[tuple[str, list, list]], x_label: str, title: str):
    """One axis per ``(y_label, xs, ys)`` panel, stacked with a shared, whole-number x axis."""
    figure, axes = plt.subplots(len(panels), 1, figsize=(7, 2.3 * len(panels) + 0.4), sharex=True, squeeze=False,
                                layout="constrained")
    for axis, (y_label, xs, ys) in zip(axes[:, 0], panels):
        axis.plot(xs, ys, marker=marker_for(len(xs)))
        axis.set_ylabel(y_label)
        axis.yaxis.set_major_formatter(FewestDigits())
        axis.grid(alpha=0.3)
        integer_ticks(axis)
    axes[-1, 0].set_xlabel(x_label)
    figure.suptitle(title)
    return figure


def loss_curves(rows: list[dict], title: str):
    """Total loss, then each loss term on its own axis, against the step."""
    steps, terms = [r["step"] for r in rows], loss_terms(rows)
    same = [t for t in rows[0] if t not in terms and t not in NOT_LOSS_TERMS and isinstance(rows[0][t], (int, float))
            and all(row.get(t) == row.get("loss") for row in rows)]
    labels = {term: term_label(term) for term in terms}
    if same:
        labels["loss"] = f"total loss = {term_label(same[0])}"
    return stacked_series([(labels[t], steps, [r.get(t, math.nan) for r in rows]) for t in terms], "optimiser step",
                          title)


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
        panels.append((MONITORS[key], [row["epoch"] + 1 for row in rows], [row[key] for row in rows]))
    return stacked_series(panels, "epoch", title)


def compare_figure(runs: list[Run], labels: list[str], title: str):
    """Several runs overlaid, one colour per run in every panel: each loss term per step, on a panel of its
    own for each loss function (their scales differ), and, where logged, effective rank per epoch."""
    metrics = [read_metrics(r.metrics_path) for r in runs]
    losses = [r.manifest.get("config", {}).get("loss", "unknown loss") for r in runs]
    panels: list[tuple[str, str]] = []
    for rows, loss in zip(metrics, losses):
        panels += [(loss, t) for t in (loss_terms(rows) if rows else []) if (loss, t) not in panels]
    with_rank = any("effective_rank" in row for r in runs for row in r.manifest.get("epochs", []))
    if not panels and not with_rank:
        raise UserError("none of the runs has logged metrics yet")
    count = len(panels) + with_rank
    figure, axes = plt.subplots(count, 1, figsize=(7, 2.4 * count + 0.4), squeeze=False, layout="constrained")
    for axis, (loss, term) in zip(axes[:, 0], panels):
        for index, (rows, label, run_loss) in enumerate(zip(metrics, labels, losses)):
            points = [(r["step"], r[term]) for r in rows if term in r] if run_loss == loss else []
            if points:
                axis.plot(*zip(*points), color=f"C{index % 10}", marker=marker_for(len(points)),
                          label=f"{label} ({method_name(loss)})")
        _finish_panel(axis, "optimiser step", term_label(term))
    if with_rank:
        axis = axes[-1, 0]
        for index, (run, label, loss) in enumerate(zip(runs, labels, losses)):
            points = [(e["epoch"] + 1, e["effective_rank"]) for e in run.manifest.get("epochs", [])
                      if "effective_rank" in e]
            if points:
                axis.plot(*zip(*points), marker="o", color=f"C{index % 10}", label=f"{label} ({method_name(loss)})")
        _finish_panel(axis, "epoch", MONITORS["effective_rank"])
    datasets = sorted({r.manifest.get("dataset", {}).get("name", "unknown data") for r in runs})
    figure.suptitle(f"{title}: training on {', '.join(datasets)}")
    return figure


def _finish_panel(axis, x_label: str, y_label: str) -> None:
    axis.set_xlabel(x_label)
    axis.set_ylabel(y_label)
    axis.yaxis.set_major_formatter(FewestDigits())
    integer_ticks(axis)
    axis.grid(alpha=0.3)
    axis.legend(loc="best", fontsize=7)
