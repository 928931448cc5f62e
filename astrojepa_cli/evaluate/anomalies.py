"""Anomaly scores in embedding space: the most unusual objects rank first."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import StandardScaler


def knn_scores(embeddings: np.ndarray, k: int = 10) -> np.ndarray:
    """Mean Euclidean distance of each (standardised) embedding to its ``k`` nearest other embeddings."""
    x = StandardScaler().fit_transform(embeddings)
    k = min(k, len(x) - 1)
    distances, _ = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x)
    return distances[:, 1:].mean(axis=1)


def rank(scores: np.ndarray, top: int) -> np.ndarray:
    """Indices of the ``top`` highest scores, highest first (ties broken by index)."""
    return np.argsort(-scores, kind="stable")[:top]


def write_report(scores: np.ndarray, top_rows: np.ndarray, ids: np.ndarray, labels: np.ndarray,
                 class_names: list[str], images: np.ndarray, out_dir: Path, title: str) -> dict:
    """Ranked CSV and JSON of every object, plus a PNG mosaic of the ``top_rows``."""
    from astrojepa_cli.atomic import atomic_path, write_json
    from astrojepa_cli.evaluate.plots import mosaic, save_figure

    def label_name(label: int) -> str:
        return class_names[label] if 0 <= label < len(class_names) else ""

    order = rank(scores, len(scores))
    records = [{"rank": r + 1, "id": str(ids[i]), "score": float(scores[i]), "label": label_name(int(labels[i]))}
               for r, i in enumerate(order)]
    csv_path, json_path, png_path = out_dir / "anomalies.csv", out_dir / "anomalies.json", out_dir / "mosaic.png"
    with atomic_path(csv_path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["rank", "id", "score", "label"])
        writer.writeheader()
        writer.writerows(records)
    write_json(json_path, records)
    captions = [f"#{r + 1} {ids[i]}\nscore {scores[i]:.3g} {label_name(int(labels[i]))}" for r, i in enumerate(top_rows)]
    save_figure(mosaic(images, captions, title), png_path)
    return {"csv": str(csv_path), "json": str(json_path), "mosaic": str(png_path), "top": records[: len(top_rows)]}
