"""The frozen-feature protocol of the benchmarks: one scoring for learned, random and pixel features.

Every row is scored the same way, so the comparison is fair:

* the features are averaged over the dihedral group D4 (``tta="d4"``): an
  encoder's embeddings of the 8 rotated/flipped copies, or, for pixels, the
  8 transformed pixel vectors before PCA (the symmetrised image);
* the linear probe (standardised features, class-balanced logistic regression,
  C from 1e-4 to 1e2 by 3-fold CV) on every labelled train image;
* the cosine kNN probe, k = 20, on features standardised on the train split;
* the linear probe on 10 labelled images per class, mean ± std over 5 draws.

Each reports accuracy, balanced accuracy and macro-F1 on the test split; the linear and
kNN probes also their prediction for every test image and the 95 % bootstrap interval of
their balanced accuracy (:mod:`.bootstrap`), and the linear probe whether its solver converged.
The random-weights rows are :mod:`.random_baseline`'s networks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch
from sklearn.decomposition import PCA

from astrojepa_cli.data import loader, store
from astrojepa_cli.evaluate.features import Features
from astrojepa_cli.evaluate.probes.knn import knn_probe
from astrojepa_cli.evaluate.probes.label_efficiency import shots_curve
from astrojepa_cli.evaluate.probes.bootstrap import with_interval
from astrojepa_cli.evaluate.probes.linear import TEST_SPLIT, labelled_split, linear_probe
from astrojepa_cli.evaluate.probes.random_baseline import random_networks, stronger
from registry.views import centre_view, dihedral_views

SHOTS = 10
DRAWS = 5
KNN_K = 20
PIXEL_COMPONENTS = 128
METRICS = ("accuracy", "balanced_accuracy", "macro_f1")


def score_features(features: Features, classes: list[str], shots: int = SHOTS, draws: int = DRAWS,
                   k: int = KNN_K) -> dict[str, dict]:
    """Accuracy, balanced accuracy and macro-F1 of the linear, kNN and few-shot probes (with stds for few-shot);
    for the linear and kNN probes also the test predictions and the balanced accuracy's bootstrap interval."""
    y_test = labelled_split(features, TEST_SPLIT)[1]
    linear = with_interval(linear_probe(features, classes), y_test)
    knn = with_interval(knn_probe(features, classes, k=k), y_test)
    few = shots_curve(features, classes, [shots], seeds=draws)["curve"][0]
    kept = (*METRICS, "balanced_accuracy_ci", "test_predictions")
    return {
        "linear": {**{m: linear[m] for m in kept}, "C": linear["C"], "converged": linear["converged"]},
        f"knn-{k}": {m: knn[m] for m in kept},
        f"{shots}-shot": {**{m: few[m] for m in METRICS}, **{f"{m}_std": few.get(f"{m}_std", 0.0) for m in METRICS},
                          "draws": draws},
    }


def random_weights_scores(build: Callable[[], torch.nn.Module], seed: int, store_path: Path,
                          device: torch.device | str, stretch: str, features_of: Callable[[torch.nn.Module], Features],
                          classes: list[str]) -> dict[str, dict]:
    """:func:`score_features` of the random-weights baseline: for each probe, the stronger of
    :func:`.random_baseline.random_networks` built by ``build()`` under ``seed`` (both scores in ``random_inits``)."""
    networks = random_networks(build, seed, store_path, device, stretch)
    scored = {name: score_features(features_of(network), classes) for name, network in networks.items()}
    probes = next(iter(scored.values()))
    return {probe: stronger({name: scores[probe] for name, scores in scored.items()}) for probe in probes}


def pixel_features(store_path: Path, img_size: int, tta: str = "d4", components: int = PIXEL_COMPONENTS,
                   stretch: str = "none") -> Features:
    """Normalised pixels at ``img_size`` (averaged over D4 with ``tta="d4"``), PCA-reduced on the labelled train split."""
    meta = store.load(store_path, with_images=False)
    normalise = loader.Normaliser.for_store(store_path, torch.device("cpu"), stretch)
    chunks = []
    for _, images in store.iter_image_chunks(store_path, chunk=512):
        pixels = centre_view(normalise(loader.channels_first(images, torch.device("cpu"))), img_size)
        if tta == "d4":
            pixels = torch.stack(dihedral_views(pixels)).mean(0)
        chunks.append(pixels.flatten(1).numpy().astype(np.float32))
    pixels = np.concatenate(chunks)
    train = (meta.split == "train") & (meta.labels >= 0)
    pca = PCA(n_components=min(components, int(train.sum()) - 1, pixels.shape[1]), random_state=0).fit(pixels[train])
    return Features(pca.transform(pixels).astype(np.float32), meta.labels, meta.ids, meta.split, meta.targets)
