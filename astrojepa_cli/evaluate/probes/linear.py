"""Frozen linear probe: standardised features, class-balanced logistic regression, C by cross-validation."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score, recall_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from astrojepa_cli.errors import UserError
from astrojepa_cli.evaluate.features import Features

# Inverse regularisation strengths searched by cross-validation: 1e-4 ... 1e2, one per decade. Features
# of random or barely trained networks often want strong regularisation, below the old floor of 0.01.
C_GRID = tuple(float(c) for c in np.logspace(-4, 2, 7))
CV_FOLDS = 3
MAX_ITER = 3000
TEST_SPLIT = "test"


def finite(features: Features) -> Features:
    """``features``, if every embedding is finite: NaN from damaged weights or pixels is one clear error."""
    bad = ~np.isfinite(features.embeddings).all(axis=1)
    if bad.any():
        raise UserError(f"{int(bad.sum())} of {len(bad)} embeddings are NaN or Inf (first: image "
                        f"'{features.ids[np.argmax(bad)]}'); are the run's weights or the store's pixels damaged?")
    return features


def labelled_split(features: Features, split: str) -> tuple[np.ndarray, np.ndarray]:
    rows = (features.split == split) & (features.labels >= 0)
    return features.embeddings[rows], features.labels[rows]


def train_and_test(features: Features, test_split: str = TEST_SPLIT) -> tuple[np.ndarray, ...]:
    """Labelled (x_train, y_train, x_test, y_test), checked to be usable by a classifier."""
    x_train, y_train = labelled_split(features, "train")
    x_test, y_test = labelled_split(features, test_split)
    if len(np.unique(y_train)) < 2:
        raise UserError("the probe needs labelled train images of at least two classes")
    if len(y_test) == 0:
        raise UserError(f"the dataset has no labelled images in the '{test_split}' split")
    return x_train, y_train, x_test, y_test


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str]) -> dict:
    """Top-1, balanced accuracy, macro-F1 (over classes present in ``y_true``), per-class recall, confusion matrix."""
    labels = list(range(len(class_names)))
    recall = recall_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", labels=np.unique(y_true))),
        "per_class_recall": dict(zip(class_names, map(float, recall))),
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "classes": list(class_names),
    }


def classifier(y: np.ndarray, seed: int) -> Pipeline:
    """Standardisation, then class-balanced logistic regression with C chosen from ``C_GRID``.

    C is the one of ``C_GRID`` (1e-4 to 1e2) with the best 3-fold cross-validated balanced accuracy on
    the training rows (``LogisticRegressionCV``, refit on all of them). With fewer than 3 examples of some class
    there are no folds to compare, and C is 1.
    """
    if np.unique(y, return_counts=True)[1].min() < CV_FOLDS:
        return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=MAX_ITER, class_weight="balanced",
                                                                  random_state=seed))
    folds = StratifiedKFold(n_splits=CV_FOLDS, shuffle=True, random_state=seed)
    return make_pipeline(StandardScaler(), LogisticRegressionCV(
        Cs=list(C_GRID), l1_ratios=(0.0,), cv=folds, scoring="balanced_accuracy", max_iter=MAX_ITER,
        class_weight="balanced", random_state=seed))


def chosen_c(model: Pipeline) -> float:
    """The C a fitted :func:`classifier` uses."""
    regression = model[-1]
    return float(np.ravel(regression.C_)[0]) if hasattr(regression, "C_") else float(regression.C)


def converged(model: Pipeline, convergence_warnings: int) -> bool:
    """Whether the solver converged for the fits behind the chosen C: the cross-validation fits at that C
    (their iteration counts are below ``max_iter``) and the final refit on every row.

    scikit-learn keeps no iteration count of ``LogisticRegressionCV``'s refit, but it warns
    (``ConvergenceWarning``) once for each fit that stopped at ``max_iter``: more warnings than
    cross-validation fits that stopped there means the refit stopped too.
    """
    regression = model[-1]
    iterations = np.asarray(regression.n_iter_)
    if not hasattr(regression, "C_"):
        return bool((iterations < regression.max_iter).all())
    stopped = iterations >= regression.max_iter
    grid = np.asarray(regression.Cs_)
    # The axes of n_iter_ (classes, folds, Cs, l1 ratios) differ between scikit-learn's attribute layouts;
    # the Cs axis is the one as long as the grid (the folds are fewer).
    grid_axis = max(axis for axis, size in enumerate(stopped.shape) if size == len(grid))
    at_chosen = np.take(stopped, int(np.argmin(np.abs(grid - chosen_c(model)))), axis=grid_axis)
    return not at_chosen.any() and convergence_warnings <= int(stopped.sum())


def fit_and_score(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                  class_names: list[str], seed: int) -> dict:
    """Fit the probe on (x_train, y_train) with C by cross-validation; metrics and each test row's
    predicted class (``test_predictions``, for intervals) on the test rows, and whether the solver converged.

    BLAS runs on one thread here: the solver's matrix products are small, and BLAS threads
    that spin while they wait made each fit many times slower whenever another job shared the cores.
    """
    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        # chosen_c reads C_ in both its old (array) and its new (float) form, so the notice of the change is noise.
        warnings.filterwarnings("ignore", "The fitted attributes of LogisticRegressionCV", FutureWarning)
        model = classifier(y_train, seed).fit(x_train, y_train)
        predicted = model.predict(x_test)
    not_converged = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
    for other in (w for w in caught if not issubclass(w.category, ConvergenceWarning)):
        warnings.warn_explicit(other.message, other.category, other.filename, other.lineno)
    return {**classification_metrics(y_test, predicted, class_names), "C": chosen_c(model),
            "converged": converged(model, not_converged), "max_iter": MAX_ITER,
            "test_predictions": predicted.astype(int).tolist(), "n_train": int(len(y_train)), "n_test": int(len(y_test))}


def linear_probe(features: Features, class_names: list[str], seed: int = 0, test_split: str = TEST_SPLIT) -> dict:
    """Fit on the whole labelled train split, score on ``test_split``."""
    x_train, y_train, x_test, y_test = train_and_test(features, test_split)
    return {**fit_and_score(x_train, y_train, x_test, y_test, class_names, seed), "test_split": test_split}
