"""The morphology targets, checked against a study's best recipe: frozen probes against random weights
and pixels with paired-bootstrap intervals, the radio set, the best LeJEPA recipe and the shortcut monitor.

The targets are defined at 30 CPU-minutes and 3 seeds; a study at a shorter budget shows how close
its best recipe comes, and says so.
"""

from __future__ import annotations

import numpy as np

from sweeping.intervals import row_intervals
from sweeping.ranking import summary
from sweeping.recipes import Sweep

OPTICAL, RADIO = "gz1-48", "first-radio"
RETRIEVAL_LIMIT = 0.95  # the SimCLR monitor's positive-pair retrieval must end below this


def _best_rows(rows: list[dict], name: str) -> dict[str, dict]:
    return {r["dataset"]: r for r in rows if r["kind"] == "recipe" and r["name"] == name and r["seed"] == 0}


def target_lines(sweep: Sweep, rows: list[dict],
                 test_labels: dict[str, list[int]]) -> tuple[str, list[tuple[str, str, str, str, str]]] | None:
    """The study's best recipe and, for each target the rows can check, (set, target, needed, measured, met);
    None before any recipe is scored on every dataset."""
    ranked = [line for line in summary(sweep, rows) if line["score"] is not None]
    if not ranked:
        return None
    best = ranked[0]
    baselines = {r["key"]: r for r in rows if r["kind"] == "baseline"}
    mine = _best_rows(rows, best["name"])
    checks = []
    if OPTICAL in mine and OPTICAL in test_labels:
        optical = row_intervals(mine[OPTICAL], baselines, np.asarray(test_labels[OPTICAL]))
        linear, knn = optical["linear"], optical["knn-20"]
        checks.append((OPTICAL, "linear probe", "≥ 0.76", linear["value"], linear["value"] >= 0.76))
        if linear["random"]:
            checks.append((OPTICAL, "linear − random weights", "≥ +0.10", linear["random"]["value"],
                           linear["random"]["value"] >= 0.10))
            checks.append((OPTICAL, "lower end of its 95 % interval", "≥ +0.05", linear["random"]["ci"][0],
                           linear["random"]["ci"][0] >= 0.05))
        for against, named in (("pixels", "pixels"), ("random", "random weights")):
            if knn[against]:
                value = knn[against]["value"]
                checks.append((OPTICAL, f"kNN − {named}", "≥ +0.05", value, value >= 0.05))
    if RADIO in mine and RADIO in test_labels:
        radio = row_intervals(mine[RADIO], baselines, np.asarray(test_labels[RADIO]))["linear"]["random"]
        if radio:
            checks.append((RADIO, "linear − random weights", "≥ +0.08", radio["value"], radio["value"] >= 0.08))
    options = dict(sweep.recipes)
    lejepa = next((line for line in ranked if options[line["name"]].get("loss") == "lejepa"), None)
    if lejepa:
        gap = best["score"] - lejepa["score"]
        checks.append(("both", f"best LeJEPA (`{lejepa['name']}`) behind the best", "≤ 0.03", gap, gap <= 0.03))
    simclr = next((line for line in ranked if options[line["name"]].get("loss", "simclr") == "simclr"), None)
    if simclr:
        ends = [r.get("monitors", {}).get("shortcut_retrieval") for r in _best_rows(rows, simclr["name"]).values()]
        if ends and None not in ends:
            checks.append(("both", f"positive retrieval at the end (`{simclr['name']}`)", f"< {RETRIEVAL_LIMIT}",
                           max(ends), max(ends) < RETRIEVAL_LIMIT))
    return best["name"], [(dataset, label, needed, _shown(value, needed), "yes" if met else "no")
                          for dataset, label, needed, value, met in checks]


def _shown(value: float, needed: str) -> str:
    """A difference with its sign, a score without."""
    return f"{value:+.3f}" if needed.startswith(("≥ +", "≤")) else f"{value:.3f}"


def targets_markdown(sweep: Sweep, rows: list[dict], test_labels: dict[str, list[int]], length: str) -> str:
    """The targets table of :func:`target_lines`, or nothing before a recipe is scored on every dataset."""
    checked = target_lines(sweep, rows, test_labels)
    if not checked:
        return ""
    best, lines = checked
    return "\n".join([
        "### The targets", "",
        f"The best recipe by the ranking above is `{best}`. The targets are defined at 30 CPU-minutes and the mean "
        f"of 3 seeds; these rows are one seed at {length}. Fine-tuning against training from scratch at 1, 10 and "
        "100 % of the labels is measured apart, on one run ([causes.md](causes.md#what-labels-buy-fine-tuning-against-"
        "training-from-scratch)); supervised training with all labels at the same budget is not measured.", "",
        "| set | target | needed | measured | met |", "|---|---|---:|---:|---|",
        *(f"| {' | '.join(line)} |" for line in lines), ""])
