"""Label-efficiency curves: the linear probe trained on a few labels per class, or a fraction of them."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from astrojepa_cli.data.splits import hold_out
from astrojepa_cli.errors import UserError
from astrojepa_cli.evaluate.features import Features
from astrojepa_cli.evaluate.probes.linear import TEST_SPLIT, fit_and_score, train_and_test
from astrojepa_cli.evaluate.probes.seeds import summarise


def parse_list(text: str, kind: type, option: str) -> list:
    """``"1,10,100"`` -> ``[1, 10, 100]``, with a clear error naming ``option``."""
    try:
        values = [kind(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UserError(f"{option} takes a comma-separated list of {kind.__name__}s (got {text})") from None
    if not values:
        raise UserError(f"{option} needs at least one value")
    return values


def per_class_sample(labels: np.ndarray, shots: int, seed: int | np.random.Generator) -> np.ndarray:
    """Row indices of ``shots`` random examples of each class (all of a class that has fewer)."""
    rng = np.random.default_rng(seed)
    rows = [rng.permutation(np.flatnonzero(labels == c))[:shots] for c in np.unique(labels)]
    return np.sort(np.concatenate(rows))


def fraction_sample(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Row indices of a seeded random ``fraction`` of the rows (at least one), in class proportion
    where the classes are large enough (:func:`astrojepa_cli.data.splits.hold_out`)."""
    rows = np.arange(len(labels))
    return hold_out(rows, labels, max(1, int(round(fraction * len(rows)))), seed)[1]


def _curve(features: Features, class_names: list[str], points: Sequence, sampler, key: str, seeds: int,
           test_split: str) -> list[dict]:
    x_train, y_train, x_test, y_test = train_and_test(features, test_split)
    curve = []
    for point in points:
        results = []
        for seed in range(seeds):
            rows = sampler(y_train, point, seed)
            if len(np.unique(y_train[rows])) < 2:
                raise UserError(f"{key} {point} leaves fewer than two classes to train on")
            results.append(fit_and_score(x_train[rows], y_train[rows], x_test, y_test, class_names, seed))
        summary = summarise(results) if seeds > 1 else results[0]
        curve.append({key: point, **{k: v for k, v in summary.items()
                                     if k not in ("confusion_matrix", "classes", "test_predictions")}})
    return curve


def shots_curve(features: Features, class_names: list[str], shots: Sequence[int], seeds: int = 1,
                test_split: str = TEST_SPLIT) -> dict:
    """Few-shot probe: for each count, that many labelled train images per class (a fresh draw per seed)."""
    if min(shots) < 1:
        raise UserError("--shots values must be at least 1")
    return {"curve": _curve(features, class_names, sorted(shots), per_class_sample, "shots", seeds, test_split),
            "seeds": seeds, "test_split": test_split, "classes": list(class_names)}


def fractions_curve(features: Features, class_names: list[str], fractions: Sequence[float], seeds: int = 1,
                    test_split: str = TEST_SPLIT) -> dict:
    """Label-fraction probe: for each fraction, a stratified random subset of the labelled train split."""
    if not all(0.0 < f <= 1.0 for f in fractions):
        raise UserError("--fractions values must lie in (0, 1]")
    return {"curve": _curve(features, class_names, sorted(fractions), fraction_sample, "fraction", seeds,
                            test_split), "seeds": seeds, "test_split": test_split, "classes": list(class_names)}
