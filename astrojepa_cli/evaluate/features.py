"""Frozen features: a run's encoder applied to every image of a store, in bounded chunks."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from astrojepa_cli.data import loader, store
from astrojepa_cli.errors import UserError
from astrojepa_cli.work_progress import with_progress
from registry.views import centre_view, dihedral_views

POOLS = ("mean", "cls", "last2")
# How the probe's features are normalised: per feature (the probe's own standardisation), or
# also per image first (LayerNorm without a learnt affine), which removes each image's overall scale.
FEATURE_NORMS = ("standard", "layernorm")
# Test-time averaging of embeddings: none, or the mean over the 8 rotations/flips of D4.
TTAS = ("none", "d4")
CHUNK = 256


@dataclass
class Features:
    embeddings: np.ndarray  # (N, D) float32
    labels: np.ndarray
    ids: np.ndarray
    split: np.ndarray
    targets: dict[str, np.ndarray]


def encoder_img_size(encoder: torch.nn.Module, default: int) -> int:
    """The input size the encoder was trained at (``pretrain --img-size``), else its ViT size, else ``default``."""
    return int(getattr(encoder, "input_size", None) or encoder.timm_spec.get("img_size", default))


def check_pool_name(pool: str) -> None:
    if pool not in POOLS:
        raise UserError(f"--pool must be one of {', '.join(POOLS)} (got {pool})")


def check_pool(encoder: torch.nn.Module, pool: str) -> None:
    """``mean`` and ``last2`` work for every encoder; ``cls`` needs a ViT with a class token."""
    check_pool_name(pool)
    if pool == "cls" and getattr(encoder.backbone, "cls_token", None) is None:
        raise UserError(f"encoder {encoder.timm_spec['model_name']} has no class token (astrojepa's ViTs are built "
                        "without one and mean-pool their patch tokens); use --pool mean")


def pooled(encoder: torch.nn.Module, images: torch.Tensor, pool: str) -> torch.Tensor:
    """Global embedding (N, D) of normalised images.

    ``mean`` is the encoder's own global embedding: the mean of the patch tokens
    for astrojepa's ViTs, global average pooling for CNNs. ``cls`` is the final
    class token, through the same output norm timm applies before a head.
    ``last2`` concatenates the spatial means of the last two stages (CNNs) or
    blocks (ViTs), timm's ``forward_intermediates``: a little less invariant, a
    little more detail than the last stage alone.
    """
    if pool == "mean":
        return encoder(images)
    backbone = encoder.backbone
    if pool == "last2":
        maps = backbone.forward_intermediates(images, indices=2, intermediates_only=True)
        return torch.cat([feature_map.mean(dim=(-2, -1)) for feature_map in maps], dim=1)
    return backbone.fc_norm(backbone.forward_features(images)[:, 0])


def layer_normed(features: Features) -> Features:
    """The features with each row standardised over its dimensions (LayerNorm without an affine)."""
    x = features.embeddings
    normed = (x - x.mean(axis=1, keepdims=True)) / np.sqrt(x.var(axis=1, keepdims=True) + 1e-6)
    return Features(normed.astype(np.float32), features.labels, features.ids, features.split, features.targets)


def check_feature_norm(norm: str) -> None:
    if norm not in FEATURE_NORMS:
        raise UserError(f"--feature-norm must be one of {', '.join(FEATURE_NORMS)} (got {norm})")


def check_tta(tta: str) -> None:
    if tta not in TTAS:
        raise UserError(f"--tta must be one of {', '.join(TTAS)} (got {tta})")


def tta_suffix(tta: str) -> str:
    """The suffix of the protocol key an evaluation is recorded under (``linear-d4``)."""
    return "" if tta == "none" else f"-{tta}"



def _embedder(encoder: torch.nn.Module, store_path: Path, device: torch.device | str, pool: str,
              stretch: str, tta: str) -> Callable[[np.ndarray], np.ndarray]:
    """A function from (K, H, W, C) store pixels to (K, D) float32 embeddings, normalised as in training.

    ``tta="d4"`` averages the embeddings of the 8 rotated/flipped copies of each image.
    """
    device = torch.device(device)
    check_pool(encoder, pool)
    check_tta(tta)
    info = store.read_info(store_path)
    if info.channels != encoder.in_chans:
        raise UserError(f"the encoder takes {encoder.in_chans} channel(s) but dataset '{info.name}' has {info.channels}")
    normalise = loader.Normaliser.for_store(store_path, device, stretch)
    img_size = encoder_img_size(encoder, info.image_shape[0])
    encoder = encoder.to(device).eval()

    @torch.no_grad()
    def embed(images: np.ndarray) -> np.ndarray:
        pixels = centre_view(normalise(loader.channels_first(images, device)), img_size)
        copies = dihedral_views(pixels) if tta == "d4" else [pixels]
        return torch.stack([pooled(encoder, copy, pool).float() for copy in copies]).mean(0).cpu().numpy()

    return embed


def iter_embeddings(encoder: torch.nn.Module, store_path: Path, device: torch.device | str = "cpu",
                    pool: str = "mean", stretch: str = "none", chunk: int = CHUNK,
                    tta: str = "none") -> Iterator[np.ndarray]:
    """Embed the store's images in order, ``chunk`` at a time (eval mode, centre view).

    Only one chunk of pixels and its embeddings are in memory at once.
    """
    embed = _embedder(encoder, store_path, device, pool, stretch, tta)
    n = store.read_info(store_path).n_images
    views = " x 8 views" if tta == "d4" else ""
    chunks = with_progress(store.iter_image_chunks(store_path, chunk=chunk), math.ceil(n / chunk),
                           f"embedding {n:,} images{views}")
    for _, images in chunks:
        yield embed(images)


def embed_images(encoder: torch.nn.Module, images: np.ndarray, store_path: Path, device: torch.device | str = "cpu",
                 pool: str = "mean", stretch: str = "none", tta: str = "none") -> np.ndarray:
    """Embed pixels from outside the store (K, H, W, C) exactly as the store's own images are embedded."""
    return _embedder(encoder, store_path, device, pool, stretch, tta)(images)


def extract(encoder: torch.nn.Module, store_path: Path, device: torch.device | str = "cpu",
            pool: str = "mean", stretch: str = "none", chunk: int = CHUNK, tta: str = "none") -> Features:
    """Embeddings of every image of the store, with its labels, ids, splits and targets."""
    meta = store.load(store_path, with_images=False)
    embeddings = np.concatenate(list(iter_embeddings(encoder, store_path, device, pool, stretch, chunk, tta)))
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
