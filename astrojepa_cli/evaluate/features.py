"""Frozen features: a run's encoder applied to every image of a store, in bounded chunks. The
Features record, the feature options and reading cached rows need no torch and live in
:mod:`astrojepa_cli.evaluate.feature_rows`; they are re-exported here."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from astrojepa_cli.data import loader, store
from astrojepa_cli.errors import UserError
from astrojepa_cli.evaluate.feature_rows import (  # noqa: F401  (re-exported: features.Features etc.)
    FEATURE_NORMS, POOLS, TTAS, Features, cache_options, cached_features, check_feature_norm, check_pool_name,
    check_tta, images_at, row_of_id,
)
from astrojepa_cli.runs.embedding_cache import EmbeddingCache
from astrojepa_cli.work_progress import with_progress
from registry.views import centre_view, dihedral_views

CHUNK = 256


def encoder_img_size(encoder: torch.nn.Module, default: int) -> int:
    """The input size the encoder was trained at (``pretrain --img-size``), else its ViT size, else ``default``."""
    return int(getattr(encoder, "input_size", None) or encoder.timm_spec.get("img_size", default))


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


def tta_suffix(tta: str) -> str:
    """The suffix of the protocol key an evaluation is recorded under (``linear-d4``)."""
    return "" if tta == "none" else f"-{tta}"


class EmbeddingModel(torch.nn.Module):
    """A run's embedding as one network: (N, C, H, W) store pixels (uint8, or float in the store's scale)
    to (N, D) embeddings. Stretch and per-channel standardisation as in training, the evaluation view
    (resize to the encoder's input size), the encoder, the pooling. ``embed`` and the ONNX export
    both run this module, so they compute the same function."""

    def __init__(self, encoder: torch.nn.Module, normalise: loader.Normaliser, img_size: int, pool: str) -> None:
        super().__init__()
        self.encoder, self.normalise, self.img_size, self.pool = encoder, normalise, img_size, pool

    def prepare(self, pixels: torch.Tensor) -> torch.Tensor:
        """Store pixels -> the normalised evaluation view the encoder sees."""
        return centre_view(self.normalise(pixels), self.img_size)

    def embedding(self, prepared: torch.Tensor) -> torch.Tensor:
        return pooled(self.encoder, prepared, self.pool)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.embedding(self.prepare(pixels))


def _check(encoder: torch.nn.Module, info: store.StoreInfo, pool: str, tta: str) -> None:
    check_pool(encoder, pool)
    check_tta(tta)
    if info.channels != encoder.in_chans:
        raise UserError(f"the encoder takes {encoder.in_chans} channel(s) but dataset '{info.name}' has {info.channels}")


def embedding_model(encoder: torch.nn.Module, store_path: Path, device: torch.device | str, pool: str,
                    stretch: str) -> EmbeddingModel:
    """The :class:`EmbeddingModel` of ``encoder`` on the store's images, in eval mode on ``device``."""
    device = torch.device(device)
    info = store.read_info(store_path)
    _check(encoder, info, pool, "none")
    normalise = loader.Normaliser.for_store(store_path, device, stretch)
    return EmbeddingModel(encoder, normalise, encoder_img_size(encoder, info.image_shape[0]), pool).to(device).eval()


def _embedder(encoder: torch.nn.Module, store_path: Path, device: torch.device | str, pool: str,
              stretch: str, tta: str) -> Callable[[np.ndarray], np.ndarray]:
    """A function from (K, H, W, C) store pixels to (K, D) float32 embeddings, normalised as in training.

    ``tta="d4"`` averages the embeddings of the 8 rotated/flipped copies of each image.
    """
    check_tta(tta)
    model = embedding_model(encoder, store_path, device, pool, stretch)

    @torch.no_grad()
    def embed(images: np.ndarray) -> np.ndarray:
        pixels = model.prepare(loader.channels_first(images, torch.device(device)))
        copies = dihedral_views(pixels) if tta == "d4" else [pixels]
        return torch.stack([model.embedding(copy).float() for copy in copies]).mean(0).cpu().numpy()

    return embed


def _computed(encoder: torch.nn.Module, store_path: Path, device: torch.device | str, pool: str, stretch: str,
              chunk: int, tta: str, n: int) -> Iterator[np.ndarray]:
    embed = _embedder(encoder, store_path, device, pool, stretch, tta)
    views = " x 8 views" if tta == "d4" else ""
    chunks = with_progress(store.iter_image_chunks(store_path, chunk=chunk), math.ceil(n / chunk),
                           f"embedding {n:,} images{views}")
    for _, images in chunks:
        yield embed(images)


def iter_embeddings(encoder: torch.nn.Module, store_path: Path, device: torch.device | str = "cpu",
                    pool: str = "mean", stretch: str = "none", chunk: int = CHUNK,
                    tta: str = "none", cache: EmbeddingCache | None = None) -> Iterator[np.ndarray]:
    """Embed the store's images in order, ``chunk`` at a time (eval mode, centre view).

    Only one chunk of pixels and its embeddings are in memory at once. ``cache`` is the embedding
    cache of the weights file ``encoder`` was loaded from (``EmbeddingCache.of_run(run)`` for the run's
    own encoder; never pass it for random weights or an encoder changed since): embeddings it holds
    for this store and these options are read back, others are computed and stored in it.
    """
    info = store.read_info(store_path)
    _check(encoder, info, pool, tta)
    cached = None if cache is None else cache.load(cache_options(info, pool, stretch, tta), info.n_images)
    if cached is not None:
        for start in range(0, info.n_images, chunk):
            yield cached[start : start + chunk]
        return
    if cache is None:
        yield from _computed(encoder, store_path, device, pool, stretch, chunk, tta, info.n_images)
        return
    with cache.writing(cache_options(info, pool, stretch, tta), info.n_images,
                       {"dataset": info.name, "store": info.path}) as entry:
        for embeddings in _computed(encoder, store_path, device, pool, stretch, chunk, tta, info.n_images):
            entry.add(embeddings)
            yield embeddings


def embed_images(encoder: torch.nn.Module, images: np.ndarray, store_path: Path, device: torch.device | str = "cpu",
                 pool: str = "mean", stretch: str = "none", tta: str = "none") -> np.ndarray:
    """Embed pixels from outside the store (K, H, W, C) exactly as the store's own images are embedded."""
    return _embedder(encoder, store_path, device, pool, stretch, tta)(images)


def extract(encoder: torch.nn.Module, store_path: Path, device: torch.device | str = "cpu",
            pool: str = "mean", stretch: str = "none", chunk: int = CHUNK, tta: str = "none",
            cache: EmbeddingCache | None = None) -> Features:
    """Embeddings of every image of the store, with its labels, ids, splits and targets (``cache``:
    as for :func:`iter_embeddings`)."""
    meta = store.load(store_path, with_images=False)
    embeddings = np.concatenate(list(iter_embeddings(encoder, store_path, device, pool, stretch, chunk, tta, cache)))
    return Features(embeddings, meta.labels, meta.ids, meta.split, meta.targets)
