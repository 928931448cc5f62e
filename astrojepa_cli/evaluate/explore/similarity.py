"""Similarity search in embedding space: the objects whose embeddings point the same way as a query's."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import normalize

from astrojepa_cli.data import store
from astrojepa_cli.errors import UserError
from astrojepa_cli.evaluate.features import (
    cached_features, check_pool, embed_images, extract, images_at, row_of_id,
)
from astrojepa_cli.evaluate.figures.plotting import save_figure, similarity_mosaic, sky_positions, unused_path
from astrojepa_cli.runs.embedding_cache import EmbeddingCache


def nearest(embeddings: np.ndarray, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the ``k`` embeddings of highest cosine similarity to ``query`` (D,), and those similarities."""
    rows, similarities = nearest_many(embeddings, query.reshape(1, -1), k)
    return rows[0], similarities[0]


def nearest_many(embeddings: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """For each of ``queries`` (Q, D): the rows (Q, k) of the embeddings of highest cosine similarity, and
    those similarities (Q, k), most similar first.

    Exact search: faiss's inner-product index on unit vectors when faiss is installed,
    else scikit-learn's NearestNeighbors with the cosine metric (similarity = 1 - distance).
    """
    k = min(k, len(embeddings))
    queries = normalize(queries.astype(np.float32))
    if not _has_faiss():
        distances, rows = NearestNeighbors(n_neighbors=k, metric="cosine").fit(embeddings).kneighbors(queries)
        return rows, 1.0 - distances
    import faiss

    index = faiss.IndexFlatIP(embeddings.shape[1])
    index.add(normalize(embeddings.astype(np.float32)))
    similarities, rows = index.search(queries, k)
    return rows, similarities


def image_as_store_pixels(path: Path, info: store.StoreInfo) -> np.ndarray:
    """An image file as one 8-bit store image (H, W, C), preprocessed as the store's images were at import.

    The same centre crop, size, colour mode (luminance or RGB) and channel selection, as the
    store's provenance records them; a store without that record is taken as uncropped.
    """
    from PIL import Image, UnidentifiedImageError

    from astrojepa_cli.data.preprocess import crop_resize_pil

    if not path.exists():
        raise UserError(f"image not found: {path}")
    height, _, channels = info.image_shape
    preprocessing = info.provenance.get("preprocessing", {})
    mode = preprocessing.get("mode", "L" if channels == 1 else "RGB")
    if mode not in ("L", "RGB") or np.dtype(info.dtype) != np.uint8:
        raise UserError("--image works for 8-bit greyscale or RGB datasets; for this one use --id")
    selected = preprocessing.get("channels", list(range(channels)))
    try:
        with Image.open(path) as image:
            pixels = crop_resize_pil(image.convert(mode), preprocessing.get("crop", 1.0), height)[..., selected]
    except UnidentifiedImageError:
        raise UserError(f"{path} is not an image file Pillow can read") from None
    return np.array(pixels)  # a writable copy of Pillow's read-only buffer


def similar_objects(load_encoder: Callable[[], torch.nn.Module], store_path: Path, k: int, out_dir: Path,
                    object_id: str | None = None, image_path: Path | None = None, device: torch.device | str = "cpu",
                    stretch: str = "none", pdf: bool = False, pool: str = "mean",
                    cache: EmbeddingCache | None = None) -> dict:
    """The ``k`` objects of the store most similar to a store object (``object_id``) or an image file.

    The query object itself is left out of its own neighbours. Writes a mosaic of
    the query and its neighbours into ``out_dir``, under a new name if an earlier query's is there.
    ``cache`` is the embedding cache of the weights ``load_encoder`` reads (see
    :func:`features.iter_embeddings`); the encoder is loaded only when the cache lacks the store's
    embeddings or the query is an image file.
    """
    if (object_id is None) == (image_path is None):
        raise UserError("give exactly one of --id and --image")
    if k < 1:
        raise UserError(f"--k must be at least 1 (got {k})")
    info = store.read_info(store_path)
    features = cached_features(store_path, cache, pool, stretch) if cache is not None else None
    encoder = load_encoder() if features is None or image_path is not None else None
    if features is None:
        check_pool(encoder, pool)
        features = extract(encoder, store_path, device, pool=pool, stretch=stretch, cache=cache)
    if object_id is not None:
        query_row = row_of_id(features.ids, object_id)
        query, query_image = features.embeddings[query_row], images_at(store_path, np.array([query_row]))[0]
        name, caption = object_id, f"query {object_id}"
    else:
        query_image = image_as_store_pixels(image_path, info)
        query = embed_images(encoder, query_image[None], store_path, device, pool=pool, stretch=stretch)[0]
        query_row, name, caption = -1, image_path.stem, f"query {image_path.name}"
    rows, similarities = nearest(features.embeddings, query, k + (query_row >= 0))
    keep = rows != query_row
    rows, similarities = rows[keep][:k], similarities[keep][:k]
    labels = features.labels[rows]
    neighbours = [{"rank": r + 1, "id": str(features.ids[row]), "similarity": float(sim),
                   "label": info.classes[label] if 0 <= label < len(info.classes) else ""}
                  for r, (row, sim, label) in enumerate(zip(rows, similarities, labels))]
    sky = sky_positions(store.load(store_path, with_images=False).columns, [max(query_row, 0), *rows])
    if sky is not None and query_row < 0:
        sky[0] = ""  # an image file has no recorded position
    figure = similarity_mosaic(caption, query_image, neighbours, images_at(store_path, rows),
                               f"{len(neighbours)} nearest to {name} in {info.name}", sky)
    files = save_figure(figure, unused_path(out_dir / f"{info.name}-{name}.png"), pdf)
    return {"query": name, "neighbours": neighbours, "mosaic": str(files[0]),
            "search": "faiss" if _has_faiss() else "sklearn"}


def _has_faiss() -> bool:
    return importlib.util.find_spec("faiss") is not None
