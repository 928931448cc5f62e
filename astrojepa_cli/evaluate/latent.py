"""Two-dimensional maps of an embedding space: PCA, t-SNE, or UMAP when it is installed."""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from sklearn.preprocessing import StandardScaler

from astrojepa_cli.errors import UserError

METHODS = ("pca", "tsne", "umap")


def project_2d(embeddings: np.ndarray, method: str, seed: int = 0) -> np.ndarray:
    """(N, D) standardised embeddings -> (N, 2) coordinates.

    ``pca``: the two leading principal components. ``tsne``: t-SNE (van der Maaten
    & Hinton 2008) with PCA initialisation and perplexity min(30, (N-1)/3).
    ``umap``: UMAP (McInnes et al. 2018) with its default 15 neighbours.
    """
    if method not in METHODS:
        raise UserError(f"--latent must be one of {', '.join(METHODS)} (got {method})")
    if len(embeddings) < 4:
        raise UserError("a latent map needs at least four objects")
    x = StandardScaler().fit_transform(embeddings)
    if method == "pca":
        return PCA(n_components=2, random_state=seed).fit_transform(x)
    if method == "tsne":
        perplexity = min(30.0, (len(x) - 1) / 3)
        return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)
    try:
        import umap
    except ImportError:
        raise UserError("--latent umap needs umap-learn: pip install umap-learn (or use pca or tsne)") from None
    return umap.UMAP(n_components=2, random_state=seed).fit_transform(x)
