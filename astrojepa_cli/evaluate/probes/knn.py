"""Weighted k-nearest-neighbour classification in cosine similarity."""

from __future__ import annotations

from functools import partial

import numpy as np
from sklearn.neighbors import KNeighborsClassifier

from astrojepa_cli.errors import UserError
from astrojepa_cli.evaluate.features import Features
from astrojepa_cli.evaluate.probes.linear import TEST_SPLIT, classification_metrics, train_and_test

TEMPERATURE = 0.07


def similarity_weights(distances: np.ndarray, temperature: float = TEMPERATURE) -> np.ndarray:
    r"""Vote weight :math:`e^{\cos(x, x_i)/T}` of each neighbour, from its cosine distance :math:`1 - \cos`."""
    return np.exp((1.0 - distances) / temperature)


def knn_classifier(k: int, temperature: float = TEMPERATURE) -> KNeighborsClassifier:
    r"""Class with the largest similarity-weighted vote among the ``k`` nearest train rows.

    .. math:: \hat y(x) = \arg\max_c \sum_{i \in N_k(x)} e^{\cos(x, x_i)/T}\,[y_i = c]

    with :math:`N_k(x)` the ``k`` train rows of highest cosine similarity and
    :math:`T` = ``temperature`` (Wu et al. 2018; the DINO kNN protocol, Caron et al. 2021).
    Exact search; scikit-learn computes the distances in chunks of bounded memory.
    """
    return KNeighborsClassifier(n_neighbors=k, metric="cosine", algorithm="brute",
                                weights=partial(similarity_weights, temperature=temperature))


def knn_probe(features: Features, class_names: list[str], k: int, test_split: str = TEST_SPLIT) -> dict:
    """Weighted kNN from the labelled train split, scored on ``test_split``."""
    if k < 1:
        raise UserError(f"--knn must be at least 1, got {k}")
    x_train, y_train, x_test, y_test = train_and_test(features, test_split)
    classifier = knn_classifier(min(k, len(x_train))).fit(x_train.astype(np.float32), y_train)
    predicted = classifier.predict(x_test.astype(np.float32))
    return {**classification_metrics(y_test, predicted, class_names), "k": k, "temperature": TEMPERATURE,
            "n_train": int(len(y_train)), "n_test": int(len(y_test)), "test_split": test_split}
