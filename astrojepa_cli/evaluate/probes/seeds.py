"""Repeat an evaluation over seeds and summarise it as mean ± standard deviation."""

from __future__ import annotations

from typing import Callable

import numpy as np

# Lists with one entry per test image (each result's predictions), which no summary may merge.
PER_RESULT = ("test_predictions",)


def summarise(results: list[dict]) -> dict:
    """Mean of every number over ``results``, with ``<name>_std`` (population std) beside each scalar.

    Dicts of numbers (per-class recall) are averaged key by key, other dicts summarised
    recursively (fine-tuning's ``pretrained`` and ``scratch``); lists of counts
    (confusion matrices) are summed element-wise; per-image lists (``PER_RESULT``) are kept, one
    per result; a flag (``converged``) holds only if it holds for every result; anything else is
    taken from the first result.
    """
    first = results[0]
    summary: dict = {}
    for key, value in first.items():
        values = [r[key] for r in results]
        if key in PER_RESULT:
            summary[key] = values
        elif isinstance(value, bool):
            summary[key] = all(values)
        elif not isinstance(value, (int, float, dict, list)):
            summary[key] = value
        elif isinstance(value, (int, float)):
            summary[key] = float(np.mean(values))
            summary[f"{key}_std"] = float(np.std(values))
        elif isinstance(value, dict) and all(isinstance(v, (int, float)) for v in value.values()):
            summary[key] = {k: float(np.mean([v[k] for v in values])) for k in value}
        elif isinstance(value, dict):
            summary[key] = summarise(values)
        elif isinstance(value, list) and np.asarray(value).dtype.kind in "iu":
            summary[key] = np.sum(values, axis=0).tolist()
        else:
            summary[key] = value
    return summary


def over_seeds(evaluate: Callable[[int], dict], seeds: int, first_seed: int = 0) -> dict:
    """``evaluate(seed)`` for ``seeds`` consecutive seeds, summarised; ``seeds`` records how many."""
    results = [evaluate(first_seed + i) for i in range(seeds)]
    return {**summarise(results), "seeds": seeds} if seeds > 1 else {**results[0], "seeds": 1}
