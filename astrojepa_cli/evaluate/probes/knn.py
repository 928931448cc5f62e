"""Weighted k-nearest-neighbour classification in cosine similarity."""

from __future__ import annotations

import numpy as np

from astrojepa_cli.errors import UserError
from astrojepa_cli.evaluate.features import Features
from astrojepa_cli.evaluate.probes.linear import TEST_SPLIT, classification_metrics, train_and_test

TEMPERATURE = 0.07
QUERY_CHUNK = 1024


def unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def weighted_knn_predict(x_train: np.ndarray, y_train: np.ndarray, x_query: np.ndarray, k: int,
                         num_classes: int, temperature: float = TEMPERATURE) -> np.ndarray:
    r"""Class with the largest similarity-weighted vote among the ``k`` nearest train rows.

    .. math:: \hat y(x) = \arg\max_c \sum_{i \in N_k(x)} e^{\cos(x, x_i)/T}\,[y_i = c]

    with :math:`N_k(x)` the ``k`` train rows of highest cosine similarity and
    :math:`T` = ``temperature`` (Wu et al. 2018; the DINO kNN protocol, Caron et al. 2021).
    Queries are processed in chunks so memory stays O(chunk × N_train).
    """
    k = min(k, len(x_train))
    train = unit_rows(x_train.astype(np.float32))
    predictions = []
    for start in range(0, len(x_query), QUERY_CHUNK):
        similarity = unit_rows(x_query[start : start + QUERY_CHUNK].astype(np.float32)) @ train.T
        nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        weights = np.exp(np.take_along_axis(similarity, nearest, axis=1) / temperature)
        votes = np.zeros((len(nearest), num_classes))
        np.add.at(votes, (np.arange(len(nearest))[:, None], y_train[nearest]), weights)
        predictions.append(votes.argmax(axis=1))
    return np.concatenate(predictions)


def knn_probe(features: Features, class_names: list[str], k: int, test_split: str = TEST_SPLIT) -> dict:
    """Weighted kNN from the labelled train split, scored on ``test_split``."""
    if k < 1:
        raise UserError(f"--knn must be at least 1, got {k}")
    x_train, y_train, x_test, y_test = train_and_test(features, test_split)
    predicted = weighted_knn_predict(x_train, y_train, x_test, k, len(class_names))
    return {**classification_metrics(y_test, predicted, class_names), "k": k, "temperature": TEMPERATURE,
            "n_train": int(len(y_train)), "n_test": int(len(y_test)), "test_split": test_split}
