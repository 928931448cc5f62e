"""Figures of evaluation results: confusion matrix, label-efficiency curves and latent maps."""

from __future__ import annotations

import numpy as np

from astrojepa_cli.evaluate.plots import plt


def confusion_figure(matrix: list[list[int]], class_names: list[str], title: str):
    """Row-normalised confusion matrix (colour) with the raw counts written in each cell."""
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
    axis.set_title(title)
    return figure


def curves_figure(curves: dict[str, dict], axis_key: str, title: str, metric: str = "balanced_accuracy"):
    """Label-efficiency curves (``axis_key`` = ``shots`` or ``fraction``), ± one std over seeds, one line each.

    ``curves`` maps a legend label (e.g. ``pretrained``, ``random init``) to an evaluation record with a ``curve``.
    """
    figure, axis = plt.subplots(figsize=(6, 4))
    for label, record in curves.items():
        points = record["curve"]
        x = np.array([p[axis_key] for p in points], dtype=float)
        y = np.array([p[metric] for p in points])
        spread = np.array([p.get(f"{metric}_std", 0.0) for p in points])
        axis.plot(x, y, marker="o", label=label)
        axis.fill_between(x, y - spread, y + spread, alpha=0.2)
    if axis_key == "shots":
        axis.set_xscale("log")
        axis.set_xlabel("labelled images per class")
    else:
        axis.set_xlabel("fraction of the labelled train split")
    axis.set_ylabel(metric.replace("_", " "))
    axis.grid(alpha=0.3)
    axis.legend(loc="lower right")
    axis.set_title(title)
    return figure


def latent_figure(coordinates: np.ndarray, labels: np.ndarray, class_names: list[str], method: str, title: str):
    """A 2-D map of the embeddings coloured by class; unlabelled objects in grey underneath."""
    figure, axis = plt.subplots(figsize=(6, 5))
    unlabelled = labels < 0
    if unlabelled.any():
        axis.scatter(*coordinates[unlabelled].T, s=4, c="lightgrey", label="unlabelled")
    colours = plt.get_cmap("tab10")
    for index, name in enumerate(class_names):
        members = labels == index
        if members.any():
            axis.scatter(*coordinates[members].T, s=6, color=colours(index % 10), label=name)
    names = {"pca": "PC", "tsne": "t-SNE ", "umap": "UMAP "}
    axis.set_xlabel(f"{names[method]}1")
    axis.set_ylabel(f"{names[method]}2")
    axis.legend(loc="best", markerscale=2, fontsize=8)
    axis.set_title(title)
    return figure
