"""Bootstrap intervals over the test images: how far a balanced accuracy, or the difference of two,
could move with another draw of test images of the same size.

The test images are resampled with replacement; every predictor is scored on the same resampled
indices, so a difference is paired and the noise the predictors share (hard images, rare classes)
cancels. Predictions of several seeds of one predictor (rows of a 2-D array) are scored as the
mean of their balanced accuracies, as ``--seeds`` reports them.
"""

from __future__ import annotations

import numpy as np

RESAMPLES = 2000
CONFIDENCE = 0.95
SEED = 0
# Resamples scored at once: bounds the (resamples x test images) index array in memory.
BATCH = 200


def resampled_balanced_accuracy(y_true: np.ndarray, predictions: np.ndarray, indices: np.ndarray) -> np.ndarray:
    r"""Balanced accuracy of ``predictions`` on each resample of the test images in ``indices`` (B, n).

    .. math:: \mathrm{BA}_b = \frac{1}{|C_b|}\sum_{c \in C_b} \frac{\#\{i \in I_b : y_i = c, \hat y_i = c\}}
                                                              {\#\{i \in I_b : y_i = c\}}

    with :math:`I_b` the b-th resample (a multiset of test images) and :math:`C_b` the classes present
    in it (scikit-learn's ``balanced_accuracy_score`` on the resampled rows). ``predictions`` of shape
    (S, n) are S seeds: their balanced accuracies are averaged.
    """
    predictions = np.atleast_2d(predictions)
    classes = int(y_true.max()) + 1
    resamples = indices.shape[0]
    labels = y_true[indices]
    offsets = (np.arange(resamples)[:, None] * classes + labels).ravel()
    support = np.bincount(offsets, minlength=resamples * classes).reshape(resamples, classes).astype(float)
    present = support > 0
    scores = np.zeros(resamples)
    for predicted in predictions:
        hits = (predicted[indices] == labels).ravel()
        correct = np.bincount(offsets, weights=hits, minlength=resamples * classes).reshape(resamples, classes)
        recall = np.divide(correct, support, out=np.zeros_like(correct), where=present)
        scores += recall.sum(axis=1) / present.sum(axis=1)
    return scores / len(predictions)


def bootstrap_scores(y_true: np.ndarray, predictions: list[np.ndarray], resamples: int = RESAMPLES,
                     seed: int = SEED) -> np.ndarray:
    """Balanced accuracy of each predictor on each of ``resamples`` resamples of the test images,
    (predictors, resamples); every predictor sees the same resampled indices."""
    y_true = np.asarray(y_true)
    predictions = [np.asarray(p) for p in predictions]
    rng = np.random.default_rng(seed)
    n = len(y_true)
    scores = np.empty((len(predictions), resamples))
    for start in range(0, resamples, BATCH):
        indices = rng.integers(0, n, size=(min(BATCH, resamples - start), n))
        for row, predicted in enumerate(predictions):
            scores[row, start:start + len(indices)] = resampled_balanced_accuracy(y_true, predicted, indices)
    return scores


def percentile_interval(values: np.ndarray, confidence: float = CONFIDENCE) -> list[float]:
    """The central ``confidence`` interval of bootstrap replicates: their (1-a)/2 and (1+a)/2 quantiles."""
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(values, [tail, 1.0 - tail])
    return [float(low), float(high)]


def balanced_accuracy_interval(y_true: np.ndarray, predictions: np.ndarray, resamples: int = RESAMPLES,
                               seed: int = SEED, confidence: float = CONFIDENCE) -> list[float]:
    """95 % percentile bootstrap interval of one predictor's balanced accuracy over the test images.

    The test images are drawn n at a time with replacement ``resamples`` times, the balanced accuracy
    recomputed on each draw, and the interval is the 2.5th to 97.5th percentile of those replicates
    (Efron & Tibshirani 1993, *An Introduction to the Bootstrap*, ch. 6 and the percentile interval
    of ch. 13). It measures the uncertainty from the finite test set only, not from refitting the probe.
    """
    return percentile_interval(bootstrap_scores(y_true, [predictions], resamples, seed)[0], confidence)


def paired_difference_interval(y_true: np.ndarray, predictions: np.ndarray, baseline: np.ndarray,
                               resamples: int = RESAMPLES, seed: int = SEED,
                               confidence: float = CONFIDENCE) -> list[float]:
    r"""95 % paired bootstrap interval of :math:`\mathrm{BA}(\hat y) - \mathrm{BA}(\hat y_0)` over the test images.

    Both predictors are scored on the same resampled test images in each replicate, and the interval
    is the percentile interval of the replicated differences
    :math:`\mathrm{BA}_b(\hat y) - \mathrm{BA}_b(\hat y_0)` (Efron & Tibshirani 1993, *An Introduction to
    the Bootstrap*, ch. 13; resampling the pairs keeps their correlation). An interval that excludes 0
    says the difference would keep its sign on another test set of this size.
    """
    scores = bootstrap_scores(y_true, [predictions, baseline], resamples, seed)
    return percentile_interval(scores[0] - scores[1], confidence)


def with_interval(result: dict, y_true: np.ndarray) -> dict:
    """``result`` with ``balanced_accuracy_ci`` when it carries its ``test_predictions`` (linear and kNN probes)."""
    if "test_predictions" not in result or "balanced_accuracy" not in result:
        return result
    return {**result, "balanced_accuracy_ci": balanced_accuracy_interval(y_true, np.asarray(result["test_predictions"]))}
