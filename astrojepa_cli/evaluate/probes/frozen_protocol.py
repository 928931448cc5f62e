"""The frozen-feature protocol of the benchmarks: one scoring for learned, random and pixel features.

Every row is scored the same way, so the comparison is fair:

* the features are averaged over the dihedral group D4 (``tta="d4"``): an
  encoder's embeddings of the 8 rotated/flipped copies, or, for pixels, the
  8 transformed pixel vectors before PCA (the symmetrised image);
* the linear probe (standardised features, class-balanced logistic regression,
  C by 3-fold CV) on every labelled train image;
* the cosine kNN probe, k = 20;
* the linear probe on 10 labelled images per class, mean ± std over 5 draws.

Each reports accuracy, balanced accuracy and macro-F1 on the test split.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from sklearn.decomposition import PCA

from astrojepa_cli.data import loader, store
from astrojepa_cli.evaluate.features import Features
from astrojepa_cli.evaluate.probes.knn import knn_probe
from astrojepa_cli.evaluate.probes.label_efficiency import shots_curve
from astrojepa_cli.evaluate.probes.linear import linear_probe
from registry.views import centre_view, dihedral_views

SHOTS = 10
DRAWS = 5
KNN_K = 20
PIXEL_COMPONENTS = 128
METRICS = ("accuracy", "balanced_accuracy", "macro_f1")


def score_features(features: Features, classes: list[str], shots: int = SHOTS, draws: int = DRAWS,
                   k: int = KNN_K) -> dict[str, dict]:
    """Accuracy, balanced accuracy and macro-F1 of the linear, kNN and few-shot probes (with stds for few-shot)."""
    linear = linear_probe(features, classes)
    knn = knn_probe(features, classes, k=k)
    few = shots_curve(features, classes, [shots], seeds=draws)["curve"][0]
    return {
        "linear": {**{m: linear[m] for m in METRICS}, "C": linear["C"]},
        f"knn-{k}": {m: knn[m] for m in METRICS},
        f"{shots}-shot": {**{m: few[m] for m in METRICS}, **{f"{m}_std": few.get(f"{m}_std", 0.0) for m in METRICS},
                          "draws": draws},
    }


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
