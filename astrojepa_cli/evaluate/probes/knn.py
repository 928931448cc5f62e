"""Weighted k-nearest-neighbour classification in cosine similarity of standardised features."""

from __future__ import annotations

from functools import partial

import numpy as np
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from astrojepa_cli.errors import UserError
from astrojepa_cli.evaluate.features import Features
from astrojepa_cli.evaluate.probes.linear import TEST_SPLIT, classification_metrics, train_and_test

TEMPERATURE = 0.07


def similarity_weights(distances: np.ndarray, temperature: float = TEMPERATURE) -> np.ndarray:
    r"""Vote weight :math:`e^{\cos(x, x_i)/T}` of each neighbour, from its cosine distance :math:`1 - \cos`."""
    return np.exp((1.0 - distances) / temperature)


def knn_classifier(k: int, temperature: float = TEMPERATURE) -> Pipeline:
    r"""Class with the largest similarity-weighted vote among the ``k`` nearest train rows.

    .. math:: \hat y(x) = \arg\max_c \sum_{i \in N_k(x)} e^{\cos(z, z_i)/T}\,[y_i = c],
              \qquad z = (x - \mu) / \sigma

    with :math:`\mu, \sigma` the per-feature mean and standard deviation of the train rows,
    :math:`N_k(x)` the ``k`` train rows whose :math:`z_i` are most cosine-similar to :math:`z`, and :math:`T` = ``temperature``
    (Wu et al. 2018; the DINO kNN protocol, Caron et al. 2021). The centring is what makes cosine
    similarity see anything in features that share one large common direction (post-ReLU activations,
    whose raw cosines all lie near 1), and the scaling keeps one feature of large offset or scale
    from deciding every neighbourhood.
    Exact search; scikit-learn computes the distances in chunks of bounded memory.
    """
    return make_pipeline(StandardScaler(), KNeighborsClassifier(
        n_neighbors=k, metric="cosine", algorithm="brute", weights=partial(similarity_weights, temperature=temperature)))


def knn_probe(features: Features, class_names: list[str], k: int, test_split: str = TEST_SPLIT) -> dict:
    """Weighted kNN from the labelled train split (standardised on it), scored on ``test_split``, with each
    test row's predicted class (``test_predictions``)."""
    if k < 1:
        raise UserError(f"--knn must be at least 1, got {k}")
    x_train, y_train, x_test, y_test = train_and_test(features, test_split)
    classifier = knn_classifier(min(k, len(x_train))).fit(x_train.astype(np.float32), y_train)
    predicted = classifier.predict(x_test.astype(np.float32))
    return {**classification_metrics(y_test, predicted, class_names), "k": k, "temperature": TEMPERATURE,
            "standardised": True, "test_predictions": predicted.astype(int).tolist(),
            "n_train": int(len(y_train)), "n_test": int(len(y_test)), "test_split": test_split}
