"""A store's features as rows, without torch: the Features record, the feature options and their
checks, cached embeddings read back, and store rows looked up by id or read by index.

Commands that answer from the embedding cache (a second ``similar`` query) need only this module;
computing embeddings needs an encoder and lives in :mod:`astrojepa_cli.evaluate.features`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from astrojepa_cli.data import store
from astrojepa_cli.errors import UserError
from astrojepa_cli.runs.embedding_cache import EmbeddingCache, file_signature

POOLS = ("mean", "cls", "last2")
# How the probe's features are normalised: per feature (the probe's own standardisation), or
# also per image first (LayerNorm without a learnt affine), which removes each image's overall scale.
FEATURE_NORMS = ("standard", "layernorm")
# Test-time averaging of embeddings: none, or the mean over the 8 rotations/flips of D4.
TTAS = ("none", "d4")


@dataclass
class Features:
    embeddings: np.ndarray  # (N, D) float32
    labels: np.ndarray
    ids: np.ndarray
    split: np.ndarray
    targets: dict[str, np.ndarray]


def check_pool_name(pool: str) -> None:
    if pool not in POOLS:
        raise UserError(f"--pool must be one of {', '.join(POOLS)} (got {pool})")


def check_feature_norm(norm: str) -> None:
    if norm not in FEATURE_NORMS:
        raise UserError(f"--feature-norm must be one of {', '.join(FEATURE_NORMS)} (got {norm})")


def check_tta(tta: str) -> None:
    if tta not in TTAS:
        raise UserError(f"--tta must be one of {', '.join(TTAS)} (got {tta})")


def cache_options(info: store.StoreInfo, pool: str, stretch: str, tta: str) -> dict:
    """What, besides the weights, a cache entry's features depend on. The input size is not listed:
    the encoder file records it, or it is the store's image size, and both files' hashes are. The
    store's recorded hash is joined by its file's size, mtime and inode, so pixels rewritten by
    another tool (which leaves the recorded hash as it was) are embedded afresh."""
    return {"store_sha256": info.sha256, "store_file": file_signature(Path(info.path)), "pool": pool, "tta": tta,
            "stretch": stretch}


def cached_features(store_path: Path, cache: EmbeddingCache, pool: str = "mean", stretch: str = "none",
                    tta: str = "none") -> Features | None:
    """The store's features held by ``cache`` for these options, or None; no encoder needs loading."""
    check_pool_name(pool)
    check_tta(tta)
    info = store.read_info(store_path)
    embeddings = cache.load(cache_options(info, pool, stretch, tta), info.n_images)
    if embeddings is None:
        return None
    meta = store.load(store_path, with_images=False)
    return Features(embeddings, meta.labels, meta.ids, meta.split, meta.targets)


def images_at(store_path: Path, rows: np.ndarray) -> np.ndarray:
    """Pixels (K, H, W, C) of the store rows ``rows``, in the order given, reading only those rows."""
    import h5py

    rows = np.asarray(rows, dtype=np.int64)
    unique, inverse = np.unique(rows, return_inverse=True)
    with h5py.File(store_path, "r") as handle:
        return handle["images"][unique][inverse]


def row_of_id(ids: np.ndarray, object_id: str) -> int:
    """The store row of the object ``object_id``; a clear error if there is none."""
    found = np.flatnonzero(ids == object_id)
    if len(found) == 0:
        raise UserError(f"no object with id '{object_id}' in this dataset")
    return int(found[0])
