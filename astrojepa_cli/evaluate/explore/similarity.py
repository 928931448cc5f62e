"""Similarity search in embedding space: the objects whose embeddings point the same way as a query's."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from astrojepa_cli.data import store
from astrojepa_cli.errors import UserError
from astrojepa_cli.evaluate.feature_rows import cached_features, images_at, row_of_id
from astrojepa_cli.evaluate.figures.plotting import save_figure, similarity_mosaic, sky_positions, unused_path
from astrojepa_cli.runs.embedding_cache import EmbeddingCache

if TYPE_CHECKING:
    import torch

# Query rows scored against all embeddings at once by the exact numpy search: bounds its memory to
# QUERY_CHUNK x N similarities (100 MB for 100k objects).
QUERY_CHUNK = 256


def nearest(embeddings: np.ndarray, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the ``k`` embeddings of highest cosine similarity to ``query`` (D,), and those similarities."""
    rows, similarities = nearest_many(embeddings, query.reshape(1, -1), k)
    return rows[0], similarities[0]


def nearest_many(embeddings: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """For each of ``queries`` (Q, D): the rows (Q, k) of the embeddings of highest cosine similarity, and
    those similarities (Q, k), most similar first.

    Exact search over unit vectors (cosine similarity = inner product): faiss's flat inner-product
    index when faiss is installed, else numpy: a chunk of queries at a time against every embedding,
    the top ``k`` by ``argpartition``, then sorted (equal similarities by row).
    """
    k = min(k, len(embeddings))
    unit_embeddings, unit_queries = unit_rows(embeddings), unit_rows(queries)
    if _has_faiss():
        import faiss

        index = faiss.IndexFlatIP(unit_embeddings.shape[1])
        index.add(unit_embeddings)
        similarities, rows = index.search(unit_queries, k)
        return rows, similarities
    all_rows, all_similarities = [], []
    for start in range(0, len(unit_queries), QUERY_CHUNK):
        scores = unit_queries[start : start + QUERY_CHUNK] @ unit_embeddings.T
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        top_scores = np.take_along_axis(scores, top, axis=1)
        order = np.lexsort((top, -top_scores), axis=1)
        all_rows.append(np.take_along_axis(top, order, axis=1))
        all_similarities.append(np.take_along_axis(top_scores, order, axis=1))
    return np.concatenate(all_rows), np.concatenate(all_similarities)


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """The rows scaled to unit length (float32; an all-zero row stays zero)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


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
                    object_id: str | None = None, image_path: Path | None = None,
                    device: Callable[[], torch.device | str] = lambda: "cpu",
                    stretch: str = "none", pdf: bool = False, pool: str = "mean",
                    cache: EmbeddingCache | None = None) -> dict:
    """The ``k`` objects of the store most similar to a store object (``object_id``) or an image file.

    The query object itself is left out of its own neighbours. Writes a mosaic of
    the query and its neighbours into ``out_dir``, under a new name if an earlier query's is there.
    ``cache`` is the embedding cache of the weights ``load_encoder`` reads (see
    :func:`features.iter_embeddings`); the encoder is loaded, and ``device()`` asked for the device to
    run it on, only when the cache lacks the store's embeddings or the query is an image file, so a
    cached query by id never imports torch.
    """
    if (object_id is None) == (image_path is None):
        raise UserError("give exactly one of --id and --image")
    if k < 1:
        raise UserError(f"--k must be at least 1 (got {k})")
    info = store.read_info(store_path)
    features = cached_features(store_path, cache, pool, stretch) if cache is not None else None
    encoder = load_encoder() if features is None or image_path is not None else None
    if encoder is not None:
        from astrojepa_cli.evaluate.features import check_pool, embed_images, extract

        check_pool(encoder, pool)
        run_device = device()
    if features is None:
        features = extract(encoder, store_path, run_device, pool=pool, stretch=stretch, cache=cache)
    if object_id is not None:
        query_row = row_of_id(features.ids, object_id)
        query, query_image = features.embeddings[query_row], images_at(store_path, np.array([query_row]))[0]
        name, caption = object_id, f"query {object_id}"
    else:
        query_image = image_as_store_pixels(image_path, info)
        query = embed_images(encoder, query_image[None], store_path, run_device, pool=pool, stretch=stretch)[0]
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
            "search": "faiss" if _has_faiss() else "numpy"}


def _has_faiss() -> bool:
    return importlib.util.find_spec("faiss") is not None
