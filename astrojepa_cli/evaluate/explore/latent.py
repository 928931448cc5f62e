"""Two-dimensional maps of an embedding space: PCA, t-SNE, or UMAP when it is installed."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

import numpy as np
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from sklearn.preprocessing import StandardScaler

from astrojepa_cli.errors import UserError

METHODS = ("pca", "tsne", "umap")
NAMES = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}


@dataclass
class Projection:
    """(N, 2) map coordinates, the method's display name, and a label for each of the two axes."""

    coordinates: np.ndarray
    name: str
    axis_labels: tuple[str, str]


def check_method(method: str) -> None:
    """A clear error for an unknown method, or for umap without umap-learn: before any embedding is computed."""
    if method not in METHODS:
        raise UserError(f"--latent must be one of {', '.join(METHODS)} (got {method})")
    if method == "umap" and importlib.util.find_spec("umap") is None:
        raise UserError("--latent umap needs umap-learn: pip install 'astrojepa[umap]' (or use pca or tsne)")


def project_2d(embeddings: np.ndarray, method: str, seed: int = 0) -> Projection:
    """(N, D) standardised embeddings -> a 2-D map.

    ``pca``: the two leading principal components, each axis labelled with the fraction
    of the (standardised) variance it explains. ``tsne``: t-SNE (van der Maaten & Hinton
    2008) with PCA initialisation and perplexity min(30, (N-1)/3). ``umap``: UMAP
    (McInnes et al. 2018) with its default 15 neighbours. t-SNE and UMAP axes have no units.
    """
    check_method(method)
    if len(embeddings) < 4:
        raise UserError("a latent map needs at least four objects")
    x = StandardScaler().fit_transform(embeddings)
    name = NAMES[method]
    if method == "pca":
        pca = PCA(n_components=2, random_state=seed)
        coordinates = pca.fit_transform(x)
        shares = pca.explained_variance_ratio_
        first, second = (f"PC{i + 1} ({share:.1%} of the variance)" for i, share in enumerate(shares))
        return Projection(coordinates, name, (first, second))
    if method == "tsne":
        perplexity = min(30.0, (len(x) - 1) / 3)
        coordinates = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)
    else:
        import umap

        coordinates = umap.UMAP(n_components=2, random_state=seed).fit_transform(x)
    return Projection(coordinates, name, (f"{name} 1", f"{name} 2"))
