"""What a diagnosis measures on one set of embeddings: the spectrum, the correlation of the top
principal components with image properties, and the probes with the top components removed."""

from __future__ import annotations

import numpy as np

from astrojepa_cli.evaluate.explore import diagnostics
from astrojepa_cli.evaluate.features import Features
from astrojepa_cli.evaluate.probes.frozen_protocol import KNN_K, METRICS, SHOTS, score_features
from astrojepa_cli.evaluate.probes.knn import knn_probe
from astrojepa_cli.evaluate.probes.label_efficiency import shots_curve

REMOVED = (0, 1, 5, 10)
CORRELATED_COMPONENTS = 5


def removed_scores(features: Features, classes: list[str], removed: tuple[int, ...], draws: int,
                   linear_removed: bool, recorded: dict | None = None) -> dict[str, dict]:
    """The protocol's scores with the top ``k`` principal components projected out, for each ``k``.

    At ``k = 0`` (the raw embedding) every probe, or the ``recorded`` scores of the same protocol
    where a sweep has them; otherwise the 10-shot and kNN probes, and the all-label linear probe
    (whose search for C costs most of the time) only with ``linear_removed``.
    """
    train = features.split == "train"
    scored = {}
    for k in removed:
        if k == 0 and recorded is not None:
            scored["0"] = recorded
            continue
        kept = Features(diagnostics.remove_top_components(features.embeddings, k, fit_rows=train), features.labels,
                        features.ids, features.split, features.targets)
        if k == 0 or linear_removed:
            scored[str(k)] = score_features(kept, classes, draws=draws)
            continue
        few = shots_curve(kept, classes, [SHOTS], seeds=draws)["curve"][0]
        knn = knn_probe(kept, classes, k=KNN_K)
        scored[str(k)] = {f"knn-{KNN_K}": {m: knn[m] for m in METRICS},
                          f"{SHOTS}-shot": {**{m: few[m] for m in METRICS},
                                            **{f"{m}_std": few.get(f"{m}_std", 0.0) for m in METRICS},
                                            "draws": draws}}
    return scored


def describe(features: Features, properties: dict[str, np.ndarray], classes: list[str],
             removed: tuple[int, ...], draws: int, linear_removed: bool, recorded: dict | None = None) -> dict:
    return {"spectrum": diagnostics.spectrum(features.embeddings),
            "correlations": diagnostics.component_correlations(features.embeddings, properties,
                                                               CORRELATED_COMPONENTS),
            "scores_removed": removed_scores(features, classes, removed, draws, linear_removed, recorded)}


def balanced(scores: dict, probe: str) -> tuple[float, float]:
    cell = scores[probe]
    return cell["balanced_accuracy"], cell.get("balanced_accuracy_std", 0.0)
