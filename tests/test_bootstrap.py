"""Bootstrap intervals of balanced accuracy and of a paired difference, on synthetic predictions."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.metrics import balanced_accuracy_score

from astrojepa_cli.evaluate.probes.bootstrap import (
    balanced_accuracy_interval, paired_difference_interval, resampled_balanced_accuracy,
)

CLASSES = 4


def _predictor(labels: np.ndarray, accuracy: float, rng: np.random.Generator) -> np.ndarray:
    """Predictions right with probability ``accuracy`` in every class, else one of the other classes."""
    wrong = (labels + rng.integers(1, CLASSES, len(labels))) % CLASSES
    return np.where(rng.random(len(labels)) < accuracy, labels, wrong)


def test_resampled_balanced_accuracy_is_scikit_learns_on_each_resample():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, CLASSES, 120)
    predictions = np.stack([_predictor(labels, 0.7, rng), _predictor(labels, 0.5, rng)])
    indices = rng.integers(0, 20, (6, 120))  # few distinct images: some resamples miss a class
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn warns about predicted classes absent from a resample
        expected = [np.mean([balanced_accuracy_score(labels[i], p[i]) for p in predictions]) for i in indices]
    np.testing.assert_allclose(resampled_balanced_accuracy(labels, predictions, indices), expected)


def test_intervals_cover_known_accuracies_and_their_difference():
    rng = np.random.default_rng(0)
    labels = np.arange(2000) % CLASSES
    better, worse = _predictor(labels, 0.80, rng), _predictor(labels, 0.70, rng)
    low, high = balanced_accuracy_interval(labels, better)
    assert low < 0.80 < high and high - low < 0.05
    low, high = paired_difference_interval(labels, better, worse)
    assert low < 0.10 < high and low > 0  # the true difference is inside, and the interval excludes 0
    # Two predictors equally good: the interval of their difference contains 0.
    low, high = paired_difference_interval(labels, _predictor(labels, 0.75, rng), _predictor(labels, 0.75, rng))
    assert low < 0 < high


def test_pairing_cancels_the_noise_the_predictors_share():
    rng = np.random.default_rng(1)
    labels = np.arange(400) % CLASSES
    predictions = _predictor(labels, 0.6, rng)
    assert paired_difference_interval(labels, predictions, predictions) == [0.0, 0.0]
    # One image changed: every resample's difference is that image's share of its class, 0 or positive.
    improved = predictions.copy()
    improved[np.flatnonzero(predictions != labels)[0]] = labels[np.flatnonzero(predictions != labels)[0]]
    low, high = paired_difference_interval(labels, improved, predictions)
    assert 0.0 <= low <= high < 0.02
