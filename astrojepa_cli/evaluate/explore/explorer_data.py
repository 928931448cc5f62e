"""What the latent-space explorer shows for each object: map position, label, catalog columns, colour,
anomaly score and nearest neighbours, gathered from a run's embedding of a store."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from astrojepa_cli.data import store
from astrojepa_cli.errors import UserError
from astrojepa_cli.evaluate.explore.latent import METHODS, Projection, check_method, project_2d
from astrojepa_cli.evaluate.explore.similarity import nearest_many
from astrojepa_cli.evaluate.features import Features

UNLABELLED = "unlabelled"
ANOMALY = "anomaly"
BUILT_IN_COLOURS = ("label", ANOMALY, "split")
MAX_CATEGORIES = 256  # more distinct values than this is an identifier, not a colour


@dataclass
class Colouring:
    """The quantity the points are coloured by: one value per object, categorical (str) or numeric."""

    name: str
    values: np.ndarray
    categorical: bool


@dataclass
class ExplorerData:
    """Everything the page draws, one row per store object, in store order."""

    ids: np.ndarray
    labels: np.ndarray  # class names; UNLABELLED where there is none
    split: np.ndarray
    projection: Projection
    scores: np.ndarray  # anomaly scores, higher = more unusual
    neighbours: np.ndarray  # (N, k) rows of the k nearest other objects, nearest first
    similarities: np.ndarray  # (N, k) their cosine similarities
    columns: dict[str, np.ndarray]  # catalog columns and regression targets
    colour: Colouring


def default_method() -> str:
    """UMAP when umap-learn is installed, else PCA (t-SNE is the slowest of the three on a CPU)."""
    return "umap" if importlib.util.find_spec("umap") is not None else "pca"


def check_map_method(method: str) -> None:
    """An unknown method or umap without umap-learn: one clear error, before any embedding is computed."""
    if method not in METHODS:
        raise UserError(f"--method must be one of {', '.join(METHODS)} (got {method})")
    try:
        check_method(method)
    except UserError:
        raise UserError("--method umap needs umap-learn: pip install 'astrojepa[umap]' (or use pca or tsne)") from None


def catalog_columns(store_path: Path) -> dict[str, np.ndarray]:
    """The store's catalog columns (e.g. ra, dec) and then its regression targets, by name."""
    arrays = store.load(store_path, with_images=False)
    columns = dict(arrays.columns)
    columns.update({name: values for name, values in arrays.targets.items() if name not in columns})
    return columns


def colour_choices(columns: dict[str, np.ndarray]) -> list[str]:
    return [*BUILT_IN_COLOURS, *(name for name in columns if name not in BUILT_IN_COLOURS)]


def check_color_by(name: str, columns: dict[str, np.ndarray]) -> None:
    choices = colour_choices(columns)
    if name not in choices:
        raise UserError(f"--color-by '{name}' is not a column of this dataset (choose from {', '.join(choices)})")
    values = columns.get(name)
    if values is not None and values.dtype.kind not in "fiub" and len(np.unique(values)) > MAX_CATEGORIES:
        raise UserError(f"--color-by '{name}' has {len(np.unique(values))} distinct values, too many to colour by "
                        f"(at most {MAX_CATEGORIES}); choose a numeric or categorical column")


def object_labels(labels: np.ndarray, classes: list[str]) -> np.ndarray:
    names = np.array([*classes, UNLABELLED], dtype=object)
    return names[np.where((labels >= 0) & (labels < len(classes)), labels, len(classes))].astype(str)


def colouring(name: str, labels: np.ndarray, split: np.ndarray, scores: np.ndarray,
              columns: dict[str, np.ndarray]) -> Colouring:
    """The values ``--color-by name`` colours the points by (already checked by :func:`check_color_by`)."""
    if name == "label":
        return Colouring("label", labels, True)
    if name == "split":
        return Colouring("split", split, True)
    if name == ANOMALY:
        return Colouring("anomaly score", scores.astype(np.float64), False)
    values = columns[name]
    if values.dtype.kind in "fiub":
        return Colouring(name, values.astype(np.float64), False)
    return Colouring(name, values.astype(str), True)


def nearest_others(embeddings: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """For every object, the rows (N, k) and cosine similarities (N, k) of its ``k`` nearest other objects:
    the search ``similar`` runs, with the object itself left out of its own neighbours."""
    k = min(k, len(embeddings) - 1)
    rows, similarities = nearest_many(embeddings, embeddings, k + 1)
    others = rows != np.arange(len(rows))[:, None]
    # Keep each row's first k others in their order (a duplicate may outrank the object itself).
    keep = np.argsort(~others, axis=1, kind="stable")[:, :k]
    return (np.take_along_axis(rows, keep, axis=1).astype(np.int32),
            np.take_along_axis(similarities, keep, axis=1).astype(np.float32))


def gather(features: Features, store_path: Path, method: str, scores: np.ndarray, colour_by: str, k: int,
           seed: int = 0) -> ExplorerData:
    """The explorer's data for a store's embedding: its 2-D map by ``method``, the k nearest neighbours of
    every object, its labels, catalog columns and the colouring asked for."""
    columns = catalog_columns(store_path)
    check_color_by(colour_by, columns)
    if k < 1:
        raise UserError(f"--k must be at least 1 (got {k})")
    labels = object_labels(features.labels, store.read_info(store_path).classes)
    projection = project_2d(features.embeddings, method, seed)
    neighbours, similarities = nearest_others(features.embeddings, k)
    return ExplorerData(
        ids=features.ids.astype(str), labels=labels, split=features.split.astype(str), projection=projection,
        scores=scores, neighbours=neighbours, similarities=similarities, columns=columns,
        colour=colouring(colour_by, labels, features.split.astype(str), scores, columns),
    )
