"""Frozen linear probe: standardised features, class-balanced logistic regression."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score, recall_score
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from astrojepa_cli.errors import UserError
from astrojepa_cli.evaluate.features import Features

C_GRID = (0.01, 0.1, 1.0, 10.0)


def labelled_split(features: Features, split: str) -> tuple[np.ndarray, np.ndarray]:
    rows = (features.split == split) & (features.labels >= 0)
    return features.embeddings[rows], features.labels[rows]


def _classifier(c: float, seed: int):
    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=3000, class_weight="balanced",
                                                              random_state=seed))


def choose_c(x: np.ndarray, y: np.ndarray, seed: int) -> float:
    """The C of the grid with the best 3-fold cross-validated balanced accuracy on the train split."""
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=seed)
    scores = [cross_val_score(_classifier(c, seed), x, y, cv=folds, scoring="balanced_accuracy").mean() for c in C_GRID]
    return C_GRID[int(np.argmax(scores))]


def linear_probe(features: Features, class_names: list[str], seed: int = 0, test_split: str = "test") -> dict:
    """Fit on the train split (C by cross-validation), score on ``test_split``."""
    x_train, y_train = labelled_split(features, "train")
    x_test, y_test = labelled_split(features, test_split)
    if len(np.unique(y_train)) < 2:
        raise UserError("the probe needs labelled train images of at least two classes")
    if len(y_test) == 0:
        raise UserError(f"the dataset has no labelled images in the '{test_split}' split")
    c = choose_c(x_train, y_train, seed) if np.bincount(y_train).min(initial=0) >= 3 else 1.0
    model = _classifier(c, seed).fit(x_train, y_train)
    predicted = model.predict(x_test)
    labels = list(range(len(class_names)))
    return {
        "accuracy": float(accuracy_score(y_test, predicted)),
        "balanced_accuracy": float(balanced_accuracy_score(y_test, predicted)),
        "macro_f1": float(f1_score(y_test, predicted, average="macro", labels=np.unique(y_test))),
        "per_class_recall": dict(zip(class_names, map(float, recall_score(y_test, predicted, labels=labels,
                                                                            average=None, zero_division=0)))),
        "confusion_matrix": confusion_matrix(y_test, predicted, labels=labels).tolist(),
        "C": c,
        "n_train": int(len(y_train)),
        "n_test": int(len(y_test)),
        "test_split": test_split,
    }
