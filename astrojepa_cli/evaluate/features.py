"""Frozen features: a run's encoder applied to every image of a store, in bounded chunks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from astrojepa_cli.data import loader, store
from astrojepa_cli.errors import UserError
from registry.views import centre_view


@dataclass
class Features:
    embeddings: np.ndarray  # (N, D) float32
    labels: np.ndarray
    ids: np.ndarray
    split: np.ndarray
    targets: dict[str, np.ndarray]


def encoder_img_size(encoder: torch.nn.Module, default: int) -> int:
    return int(encoder.timm_spec.get("img_size", default))


@torch.no_grad()
def extract(encoder: torch.nn.Module, store_path: Path, device: torch.device | str = "cpu",
            batch_size: int = 256) -> Features:
    """Embed every image of the store with ``encoder`` (eval mode, centre view)."""
    device = torch.device(device)
    meta = store.load(store_path, with_images=False)
    normalise = loader.Normaliser(meta, device)
    info = store.read_info(store_path)
    if info.channels != encoder.in_chans:
        raise UserError(f"the encoder takes {encoder.in_chans} channel(s) but dataset '{info.name}' has {info.channels}")
    img_size = encoder_img_size(encoder, info.image_shape[0])
    encoder = encoder.to(device).eval()
    chunks = []
    for _, images in store.iter_image_chunks(store_path, chunk=batch_size):
        pixels = loader.channels_first(images, device)
        chunks.append(encoder(centre_view(normalise(pixels), img_size)).float().cpu())
    embeddings = torch.cat(chunks).numpy()
    return Features(embeddings, meta.labels, meta.ids, meta.split, meta.targets)


def write_safetensors(features: Features, path: Path, metadata: dict[str, str]) -> Path:
    """Embeddings and labels as tensors; ids and splits as JSON metadata."""
    import json

    from astrojepa_cli.runs import save_tensors

    tensors = {"embeddings": torch.from_numpy(features.embeddings), "labels": torch.from_numpy(features.labels)}
    tensors.update({f"targets.{k}": torch.from_numpy(v) for k, v in features.targets.items()})
    save_tensors(path, tensors, {**metadata, "ids": json.dumps(features.ids.tolist()),
                                 "split": json.dumps(features.split.tolist())})
    return path
