"""Anomaly scores in embedding space: the most unusual objects rank first (a higher score is more unusual)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Callable

import numpy as np
from sklearn.covariance import LedoitWolf
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import LocalOutlierFactor, NearestNeighbors
from sklearn.preprocessing import StandardScaler

from astrojepa_cli.data import store
from astrojepa_cli.errors import UserError
from astrojepa_cli.evaluate.features import Features, images_at


def knn_scores(embeddings: np.ndarray, k: int = 10, seed: int = 0) -> np.ndarray:
    """Mean Euclidean distance of each (standardised) embedding to its ``k`` nearest other embeddings."""
    x = StandardScaler().fit_transform(embeddings)
    k = min(k, len(x) - 1)
    distances, _ = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x)
    return distances[:, 1:].mean(axis=1)


def gaussian_scores(embeddings: np.ndarray, k: int = 10, seed: int = 0) -> np.ndarray:
    r"""Mahalanobis distance to the embeddings' mean, :math:`\sqrt{(z-\mu)^\top \Sigma^{-1} (z-\mu)}`.

    SIGReg pushes embeddings towards an isotropic Gaussian, so this is the
    natural density score for LeJEPA encoders. :math:`\Sigma` is the Ledoit–Wolf
    shrinkage estimate, which stays invertible when N is not much larger than D.
    """
    model = LedoitWolf().fit(embeddings)
    return np.sqrt(np.maximum(model.mahalanobis(embeddings), 0.0))


def iforest_scores(embeddings: np.ndarray, k: int = 10, seed: int = 0) -> np.ndarray:
    """Isolation Forest (Liu et al. 2008): objects isolated by few random splits score high."""
    forest = IsolationForest(n_estimators=200, random_state=seed).fit(embeddings)
    return -forest.score_samples(embeddings)


def lof_scores(embeddings: np.ndarray, k: int = 10, seed: int = 0) -> np.ndarray:
    """Local Outlier Factor (Breunig et al. 2000) with ``k`` neighbours: local density relative to the neighbours'."""
    lof = LocalOutlierFactor(n_neighbors=min(k, len(embeddings) - 1)).fit(embeddings)
    return -lof.negative_outlier_factor_


SCORERS: dict[str, Callable[..., np.ndarray]] = {
    "knn": knn_scores, "gaussian": gaussian_scores, "iforest": iforest_scores, "lof": lof_scores,
}


SCORE_MEANINGS = {
    "knn": "score: mean distance to the {k} nearest embeddings (standardised); higher = more unusual",
    "gaussian": "score: Mahalanobis distance from the mean embedding; higher = more unusual",
    "iforest": "score: Isolation Forest score (isolated by fewer random splits); higher = more unusual",
    "lof": "score: Local Outlier Factor, {k} neighbours; above 1 = sparser than its neighbourhood",
}


def score_meaning(scorer: str, k: int) -> str:
    """One line saying what a scorer's number measures, for figures."""
    return SCORE_MEANINGS[scorer].format(k=k)


def score(embeddings: np.ndarray, scorer: str, k: int = 10, seed: int = 0) -> np.ndarray:
    if scorer not in SCORERS:
        raise UserError(f"--scorer must be one of {', '.join(SCORERS)} (got {scorer})")
    if len(embeddings) < 3:
        raise UserError("anomaly scores need at least three objects")
    return SCORERS[scorer](embeddings, k=k, seed=seed)


def rank(scores: np.ndarray, top: int) -> np.ndarray:
    """Indices of the ``top`` highest scores, highest first (ties broken by index)."""
    return np.argsort(-scores, kind="stable")[:top]


def evaluate_class(scores: np.ndarray, labels: np.ndarray, class_names: list[str], anomaly_class: str,
                   top: int) -> dict:
    """Treat ``anomaly_class`` as the anomaly among the labelled objects: ROC-AUC and precision@top.

    ``base_rate`` (the class's share) is the precision@K of a random ranking.
    """
    if anomaly_class not in class_names:
        raise UserError(f"--eval-class '{anomaly_class}' is not a class of this dataset ({', '.join(class_names)})")
    labelled = labels >= 0
    is_anomaly = labels[labelled] == class_names.index(anomaly_class)
    if is_anomaly.all() or not is_anomaly.any():
        raise UserError(f"--eval-class needs labelled objects both in and outside class {anomaly_class}")
    kept = scores[labelled]
    top = min(top, len(kept))
    return {
        "class": anomaly_class,
        "roc_auc": float(roc_auc_score(is_anomaly, kept)),
        "precision_at_k": float(is_anomaly[rank(kept, top)].mean()),
        "k": top,
        "base_rate": float(is_anomaly.mean()),
        "n_anomalies": int(is_anomaly.sum()),
        "n_labelled": int(labelled.sum()),
    }


def ranked_records(scores: np.ndarray, ids: np.ndarray, labels: np.ndarray, class_names: list[str]) -> list[dict]:
    """Every object, most unusual first: rank, id, score and class name ('' if unlabelled)."""
    return [{"rank": r + 1, "id": str(ids[i]), "score": float(scores[i]),
             "label": class_names[labels[i]] if 0 <= labels[i] < len(class_names) else ""}
            for r, i in enumerate(rank(scores, len(scores)))]


def write_report(records: list[dict], top: int, images: np.ndarray, out_dir: Path, title: str, note: str = "",
                 sky: list[str] | None = None) -> dict:
    """Ranked CSV and JSON of every object, plus a PNG mosaic of the ``top`` (``images`` and ``sky`` positions
    in rank order), with ``note`` saying what the score measures."""
    from astrojepa_cli.atomic import atomic_path, write_json
    from astrojepa_cli.evaluate.figures.plotting import anomaly_mosaic, save_figure

    csv_path, json_path, png_path = out_dir / "anomalies.csv", out_dir / "anomalies.json", out_dir / "mosaic.png"
    with atomic_path(csv_path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["rank", "id", "score", "label"])
        writer.writeheader()
        writer.writerows(records)
    write_json(json_path, records)
    save_figure(anomaly_mosaic(records[:top], images, title, note, sky), png_path)
    return {"csv": str(csv_path), "json": str(json_path), "mosaic": str(png_path), "top": records[:top]}


def find_anomalies(features: Features, store_path: Path, class_names: list[str], scorer: str, k: int, top: int,
                   out_dir: Path, eval_class: str | None = None, seed: int = 0) -> dict:
    """Score every object, write the ranked list and mosaic, and (with ``eval_class``) measure the ranking."""
    if top < 1:
        raise UserError("--top must be at least 1")
    if k < 1:
        raise UserError(f"--k must be at least 1, got {k}")
    scores = score(features.embeddings, scorer, k, seed)
    top = min(top, len(scores))
    measured = {} if eval_class is None else {
        "evaluation": evaluate_class(scores, features.labels, class_names, eval_class, top)}
    records = ranked_records(scores, features.ids, features.labels, class_names)
    from astrojepa_cli.evaluate.figures.plotting import sky_positions

    top_rows = rank(scores, top)
    images = images_at(store_path, top_rows)
    sky = sky_positions(store.load(store_path, with_images=False).columns, top_rows)
    result = write_report(records, top, images, out_dir, f"{top} most unusual in {store_path.stem} ({scorer} score)",
                          score_meaning(scorer, k), sky)
    return {**result, "scorer": scorer, "k": k, "store": str(store_path), **measured}
