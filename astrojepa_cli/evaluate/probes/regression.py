"""Frozen regression probe: a ridge head on standardised embeddings predicts a store target (e.g. jet mass)."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from astrojepa_cli.errors import UserError
from astrojepa_cli.evaluate.features import Features
from astrojepa_cli.evaluate.probes.linear import TEST_SPLIT

ALPHA_GRID = tuple(np.logspace(-3, 3, 7))


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    r"""MSE :math:`\frac1n\sum(y-\hat y)^2`, its square root RMSE, MAE :math:`\frac1n\sum|y-\hat y|`, and R²."""
    error = y_pred - y_true
    mse = float(np.mean(error**2))
    variance = float(np.var(y_true))
    return {"mse": mse, "rmse": float(np.sqrt(mse)), "mae": float(np.mean(np.abs(error))),
            "r2": 1.0 - mse / variance if variance > 0 else 0.0}


def target_rows(features: Features, target: str, split: str) -> np.ndarray:
    """Rows of ``split`` whose ``target`` value is finite."""
    if target not in features.targets:
        have = ", ".join(sorted(features.targets)) or "none"
        raise UserError(f"the dataset has no target '{target}' (targets: {have})")
    return np.flatnonzero((features.split == split) & np.isfinite(features.targets[target]))


def ridge_probe(features: Features, target: str, test_split: str = TEST_SPLIT) -> dict:
    """Ridge regression (alpha by efficient leave-one-out CV on the train split), scored on ``test_split``.

    ``baseline`` is the same metrics for always predicting the train mean, the floor any useful head beats.
    """
    train, test = target_rows(features, target, "train"), target_rows(features, target, test_split)
    if len(train) < 2 or len(test) == 0:
        raise UserError(f"target '{target}' needs finite values in the train and '{test_split}' splits")
    y = features.targets[target]
    model = make_pipeline(StandardScaler(), RidgeCV(alphas=ALPHA_GRID)).fit(features.embeddings[train], y[train])
    predicted = model.predict(features.embeddings[test])
    return {**regression_metrics(y[test], predicted), "alpha": float(model[-1].alpha_), "target": target,
            "baseline": regression_metrics(y[test], np.full(len(test), y[train].mean())),
            "n_train": int(len(train)), "n_test": int(len(test)), "test_split": test_split}
