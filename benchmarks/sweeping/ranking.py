"""The ranked table of a sweep: one line per recipe, printed with rich and plotted against compute."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sweeping.baseline_keys import scratch_key
from sweeping.recipes import RANKABLE, Sweep


def summary(sweep: Sweep, rows: list[dict]) -> list[dict]:
    """One line per recipe: per dataset the mean (± std over seeds) of each probe, the random-weights and
    pixel scores it is compared with, and (10-shot) the same network trained from scratch on the labels."""
    baselines = {row["key"]: row for row in rows if row["kind"] == "baseline"}
    lines = []
    for name, _ in sweep.recipes:
        mine = [r for r in rows if r["kind"] == "recipe" and r["name"] == name]
        if not mine:
            continue
        line: dict = {"name": name, "datasets": {}}
        for dataset in sweep.datasets:
            here = [r for r in mine if r["dataset"] == dataset]
            if not here:
                continue
            cell = {"seeds": len(here), "steps": float(np.mean([r["steps"] for r in here])),
                    "epochs": float(np.mean([r["epochs"] for r in here])),
                    "compute_s": float(np.mean([r["compute_s"] or 0.0 for r in here]))}
            for probe in RANKABLE:
                values = [r["scores"][probe]["balanced_accuracy"] for r in here]
                cell[probe], cell[f"{probe}_std"] = float(np.mean(values)), float(np.std(values))
                random_rows = [baselines.get(r["baselines"]["random_weights"]) for r in here]
                if all(random_rows):
                    cell[f"{probe}_random"] = float(np.mean([b["scores"][probe]["balanced_accuracy"]
                                                             for b in random_rows]))
                pixels = baselines.get(here[0]["baselines"]["pixels"])
                if pixels:
                    cell[f"{probe}_pixels"] = pixels["scores"][probe]["balanced_accuracy"]
            scratch = baselines.get(scratch_key(dataset, here[0]["config"]))
            if scratch:
                cell["10-shot_scratch"] = scratch["scores"]["10-shot"]["balanced_accuracy"]
            line["datasets"][dataset] = cell
        complete = len(line["datasets"]) == len(sweep.datasets)
        line["score"] = float(np.mean([c[sweep.rank_by] for c in line["datasets"].values()])) if complete else None
        lines.append(line)
    return sorted(lines, key=lambda line: -1 if line["score"] is None else line["score"], reverse=True)


def print_table(sweep: Sweep, lines: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"recipes ranked by {sweep.rank_by} balanced accuracy (mean over datasets; "
                        f"Δ = over the same network with random weights)")
    table.add_column("#", justify="right")
    table.add_column("recipe")
    table.add_column("score", justify="right")
    for dataset in sweep.datasets:
        for label in ("epochs", "linear", "Δ rand", "10-shot", "Δ rand", "kNN"):
            table.add_column(f"{dataset} {label}" if label == "epochs" else label, justify="right")
    for rank, line in enumerate(lines, 1):
        cells = [str(rank), line["name"], "–" if line["score"] is None else f"{line['score']:.3f}"]
        for dataset in sweep.datasets:
            c = line["datasets"].get(dataset)
            if c is None:
                cells += ["–"] * 6
                continue
            cells += [f"{c['epochs']:.0f}", _mean_std(c, "linear"), delta(c, "linear"), _mean_std(c, "10-shot"),
                      delta(c, "10-shot"), f"{c['knn-20']:.3f}"]
        table.add_row(*cells)
    Console(width=max(160, 40 + 60 * len(sweep.datasets))).print(table)


def _mean_std(cell: dict, probe: str) -> str:
    return f"{cell[probe]:.3f}" + (f"±{cell[f'{probe}_std']:.3f}" if cell["seeds"] > 1 else "")


def delta(cell: dict, probe: str, against: str = "random") -> str:
    """A summary cell's gain over a baseline (``random``, ``pixels`` or ``scratch``), or – where it has none."""
    key = f"{probe}_{against}"
    return f"{cell[probe] - cell[key]:+.3f}" if key in cell else "–"


def plot_score_vs_compute(sweep: Sweep, lines: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(sweep.datasets), figsize=(5.5 * len(sweep.datasets), 4.2), squeeze=False)
    for ax, dataset in zip(axes[0], sweep.datasets):
        cells = [(line["name"], line["datasets"][dataset]) for line in lines if dataset in line["datasets"]]
        for name, cell in cells:
            x = cell["compute_s"] / 60
            drawn = ax.errorbar(x, cell[sweep.rank_by], yerr=cell[f"{sweep.rank_by}_std"], fmt="o", alpha=0.8)
            ax.annotate(name, (x, cell[sweep.rank_by]), fontsize=6, alpha=0.8)
            # Each recipe against its own network's random weights: architectures differ in how strong those are.
            if f"{sweep.rank_by}_random" in cell:
                ax.plot([x, x], [cell[f"{sweep.rank_by}_random"], cell[sweep.rank_by]], color=drawn[0].get_color(),
                        linewidth=0.6, alpha=0.6)
                ax.plot(x, cell[f"{sweep.rank_by}_random"], "o", mfc="none", color=drawn[0].get_color(), alpha=0.8)
        ax.plot([], [], "o", mfc="none", color="grey", label="the same network, random weights")
        ax.legend(loc="lower right", fontsize=7)
        clock = "CPU minutes per thread" if sweep.clock == "cpu" else "wall-clock minutes"
        ax.set_xlabel(f"pretraining compute ({clock})")
        ax.set_ylabel(f"{sweep.rank_by} probe, balanced accuracy")
        ax.set_title(dataset)
    figure.tight_layout()
    figure.savefig(path, dpi=130)
    plt.close(figure)
