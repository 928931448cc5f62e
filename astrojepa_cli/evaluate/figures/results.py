"""Figures of evaluation results: confusion matrix, label-efficiency curves and latent maps."""

from __future__ import annotations

import numpy as np

from astrojepa_cli.evaluate.explore.latent import Projection
from astrojepa_cli.evaluate.figures.plotting import plt

METRIC_LABELS = {"balanced_accuracy": "balanced accuracy", "accuracy": "accuracy", "macro_f1": "macro F1"}


def balanced_accuracy(counts: np.ndarray) -> float:
    """Mean recall over the classes present in the true labels (rows of the confusion matrix)."""
    support = counts.sum(axis=1)
    present = support > 0
    return float(np.mean(np.diag(counts)[present] / support[present]))


def confusion_figure(matrix: list[list[int]], class_names: list[str], title: str, score: float | None = None,
                     baseline: float | None = None):
    """Row-normalised confusion matrix (colour) with the raw counts written in each cell; the title gives its
    balanced accuracy (``score``, else computed from the counts) beside the random-weights ``baseline``
    (when measured) and the chance level."""
    counts = np.asarray(matrix, dtype=float)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = 1.6 + 0.7 * len(class_names)
    figure, axis = plt.subplots(figsize=(size + 1.2, size))
    image = axis.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for (row, column), count in np.ndenumerate(counts):
        axis.text(column, row, f"{int(count)}", ha="center", va="center",
                  color="white" if rates[row, column] > 0.5 else "black", fontsize=8)
    ticks = range(len(class_names))
    axis.set_xticks(ticks, class_names, rotation=45, ha="right")
    axis.set_yticks(ticks, class_names)
    axis.set_xlabel("predicted class")
    axis.set_ylabel("true class")
    figure.colorbar(image, ax=axis, label="fraction of true class (recall on the diagonal)")
    score = balanced_accuracy(counts) if score is None else score
    context = [f"random weights {baseline:.3f}"] if baseline is not None else []
    context.append(f"chance {1 / len(class_names):.3f}")
    axis.set_title(f"{title}\nbalanced accuracy {score:.3f} ({', '.join(context)})")
    return figure


def curves_figure(curves: dict[str, dict], axis_key: str, title: str, chance: float | None = None,
                  metric: str = "balanced_accuracy"):
    """Label-efficiency curves (``axis_key`` = ``shots`` or ``fraction``), one line each, with a shaded band
    of ± one standard deviation over seeds where there were several, and the ``chance`` level.

    ``curves`` maps a legend label (e.g. ``pretrained``, ``random weights``) to an evaluation record with a
    ``curve`` (and ``seeds``).
    """
    figure, axis = plt.subplots(figsize=(6.5, 4.2))
    for label, record in curves.items():
        points = record["curve"]
        x = np.array([p[axis_key] for p in points], dtype=float)
        y = np.array([p[metric] for p in points])
        line, = axis.plot(x, y, marker="o", label=label)
        seeds = int(record.get("seeds", 1))
        if seeds > 1:
            spread = np.array([p.get(f"{metric}_std", 0.0) for p in points])
            axis.fill_between(x, y - spread, y + spread, alpha=0.2, color=line.get_color(),
                              label=f"{label}: ± 1 std over {seeds} seeds")
    if chance is not None:
        axis.axhline(chance, linestyle="--", color="grey", label=f"chance level ({chance:.2f})")
    if axis_key == "shots":
        axis.set_xscale("log")
        shots = sorted({p["shots"] for record in curves.values() for p in record["curve"]})
        axis.set_xticks(shots, [str(int(s)) for s in shots])
        axis.minorticks_off()
        axis.set_xlabel("labelled images per class")
    else:
        axis.set_xlabel("fraction of the labelled train split")
    axis.set_ylabel(METRIC_LABELS.get(metric, metric))
    axis.set_ylim(0, 1.02)
    axis.grid(alpha=0.3)
    axis.legend(loc="best", fontsize=8)
    axis.set_title(title)
    return figure


def latent_figure(projection: Projection, labels: np.ndarray, class_names: list[str], title: str):
    """A 2-D map of the embeddings coloured by class, semi-transparent so dense regions show;
    unlabelled objects in grey underneath."""
    figure, axis = plt.subplots(figsize=(6.5, 5))
    coordinates = projection.coordinates
    unlabelled = labels < 0
    if unlabelled.any():
        axis.scatter(*coordinates[unlabelled].T, s=5, c="lightgrey", alpha=0.5, linewidths=0, label="unlabelled")
    colours = plt.get_cmap("tab10")
    for index, name in enumerate(class_names):
        members = labels == index
        if members.any():
            axis.scatter(*coordinates[members].T, s=8, color=colours(index % 10), alpha=0.6, linewidths=0,
                         label=name)
    axis.set_xlabel(projection.axis_labels[0])
    axis.set_ylabel(projection.axis_labels[1])
    axis.legend(loc="best", markerscale=2, fontsize=8)
    axis.set_title(title)
    return figure
