"""The training read path: a store's images held on the training device as uint8.

Batches are gathered by index and normalised on the device, so the hot loop
does no per-sample Python work and no host-to-device copy per step. A store
too large for the device memory budget is read in chunks instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from astrojepa_cli.data import store


class Normaliser:
    """Per-channel standardisation with the store's channel statistics."""

    def __init__(self, arrays: store.StoreArrays, device: torch.device) -> None:
        self.scale = 255.0 if arrays.images.dtype == np.uint8 else 1.0
        mean = torch.as_tensor(arrays.channel_mean / self.scale, dtype=torch.float32, device=device)
        std = torch.as_tensor(np.maximum(arrays.channel_std / self.scale, 1e-6), dtype=torch.float32, device=device)
        self.mean = mean.view(1, -1, 1, 1)
        self.std = std.view(1, -1, 1, 1)

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) uint8 or float pixels -> standardised float32."""
        return (pixels.float() / self.scale - self.mean) / self.std


def channels_first(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """N x H x W x C numpy images -> contiguous N x C x H x W tensor on ``device``."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous().to(device)


class DeviceImages:
    """Images of the selected rows of a store, resident on ``device``, channels first."""

    def __init__(self, path: Path, device: torch.device, rows: np.ndarray | None = None) -> None:
        arrays = store.load(path)
        self.pixels = channels_first(arrays.images if rows is None else arrays.images[rows], device)
        self.normalise = Normaliser(arrays, device)
        self.labels = arrays.labels if rows is None else arrays.labels[rows]

    def __len__(self) -> int:
        return self.pixels.shape[0]

    def batch(self, indices: torch.Tensor) -> torch.Tensor:
        """Normalised (B, C, H, W) float32 batch of the rows ``indices`` (a device tensor)."""
        return self.normalise(self.pixels.index_select(0, indices))


def split_rows(path: Path, splits: tuple[str, ...]) -> np.ndarray:
    """Row indices of a store whose split is one of ``splits``."""
    arrays = store.load(path, with_images=False)
    return np.flatnonzero(np.isin(arrays.split, splits))
