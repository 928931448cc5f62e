"""The training read path: a store's images served as normalised batches.

Where the selected rows fit the memory budget they are held, in the store's
dtype (uint8 for optical images), on the training device itself; otherwise in
host memory; otherwise they are read from the file in windows of consecutive
rows. Either way a batch is one gather by index plus one normalisation on the
device: no per-sample Python work in the hot loop.

An intensity stretch (``none``, ``asinh`` or ``zscore``) is applied here, at
load time, so it can be changed without re-importing the store.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import h5py
import numpy as np
import torch

from astrojepa_cli.data import store
from astrojepa_cli.errors import UserError

STRETCHES = ("none", "asinh", "zscore")
SAMPLE_BLOCKS = 8
SAMPLE_BLOCK_ROWS = 128
MEMORY_FRACTION = 0.5
WINDOW_BYTES = 256 * 2**20
EPS = 1e-6


def asinh_stretch(pixels: torch.Tensor, softening: torch.Tensor) -> torch.Tensor:
    """y = asinh(x / a): linear for |x| << a, logarithmic for |x| >> a.

    The arcsinh stretch of Lupton, Gunn & Szalay (1999, AJ 118, 1406) and
    Lupton et al. (2004, PASP 116, 133); ``softening`` a is per channel,
    shaped (1, C, 1, 1).
    """
    return torch.asinh(pixels / softening)


def zscore_stretch(pixels: torch.Tensor) -> torch.Tensor:
    """Per image and channel: y = (x - mean_HW(x)) / (std_HW(x) + eps).

    Removes each image's own brightness and contrast, so faint and bright
    objects reach the encoder on one scale.
    """
    mean = pixels.mean(dim=(-2, -1), keepdim=True)
    std = pixels.std(dim=(-2, -1), keepdim=True, unbiased=False)
    return (pixels - mean) / (std + EPS)


def check_stretch(stretch: str) -> None:
    if stretch not in STRETCHES:
        raise UserError(f"--stretch must be one of {', '.join(STRETCHES)}, got '{stretch}'")


def sample_images(path: Path) -> np.ndarray:
    """A deterministic sample of a store's images: up to ``SAMPLE_BLOCKS`` evenly spaced blocks of consecutive rows."""
    with h5py.File(path, "r") as handle:
        images = handle["images"]
        n = images.shape[0]
        starts = np.unique(np.linspace(0, max(n - SAMPLE_BLOCK_ROWS, 0), SAMPLE_BLOCKS).astype(int))
        return np.concatenate([images[s : s + SAMPLE_BLOCK_ROWS] for s in starts])


class Normaliser:
    """Stretch, then per-channel standardisation.

    With ``stretch="none"`` the store's recorded channel mean and std are used;
    ``asinh`` takes each channel's std as its softening and standardises with
    the statistics of stretched ``sample`` images; ``zscore`` standardises each
    image by itself. ``sample`` is needed for ``asinh`` only.
    """

    def __init__(self, arrays: store.StoreArrays, device: torch.device, stretch: str = "none",
                 sample: np.ndarray | None = None) -> None:
        check_stretch(stretch)
        self.stretch = stretch
        self.scale = 255.0 if arrays.images.dtype == np.uint8 else 1.0
        mean = torch.as_tensor(arrays.channel_mean / self.scale, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        std = torch.as_tensor(np.maximum(arrays.channel_std / self.scale, EPS), dtype=torch.float32,
                              device=device).view(1, -1, 1, 1)
        self.softening = std
        if stretch == "asinh":
            if sample is None:
                raise ValueError("the asinh stretch needs sample images to fit its statistics")
            stretched = asinh_stretch(channels_first(sample, device).float() / self.scale, std)
            mean = stretched.mean(dim=(0, 2, 3), keepdim=True)
            std = stretched.std(dim=(0, 2, 3), keepdim=True).clamp_min(EPS)
        self.mean, self.std = mean, std
        # (x / scale - mean) / std as one multiply-add: x * gain + offset
        self.gain = 1.0 / (self.scale * std)
        self.offset = -mean / std

    @classmethod
    def for_store(cls, path: Path, device: torch.device, stretch: str = "none",
                  arrays: store.StoreArrays | None = None) -> "Normaliser":
        """The normaliser of the store at ``path``: the same for every split, run and command.

        ``arrays`` (the store's metadata from ``store.load(path, with_images=False)``) saves a read.
        """
        check_stretch(stretch)
        sample = sample_images(path) if stretch == "asinh" else None
        return cls(arrays if arrays is not None else store.load(path, with_images=False), device, stretch, sample)

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) uint8 or float pixels -> stretched, standardised float32."""
        if self.stretch == "none":
            return torch.addcmul(self.offset, pixels.float(), self.gain)
        scaled = pixels.float() / self.scale
        if self.stretch == "zscore":
            return zscore_stretch(scaled)
        return (asinh_stretch(scaled, self.softening) - self.mean) / self.std


def channels_first(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """N x H x W x C numpy images -> contiguous N x C x H x W tensor on ``device``."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous().to(device)


def memory_budget(device: torch.device) -> int:
    """Bytes of images we allow ourselves to hold on ``device``: half of what is free now."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * MEMORY_FRACTION)
    return int(host_memory_available() * MEMORY_FRACTION)


def host_memory_available() -> int:
    try:
        with open("/proc/meminfo") as handle:
            fields = dict(line.split(":", 1) for line in handle)
        return int(fields["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def read_rows(path: Path, rows: np.ndarray, device: torch.device) -> torch.Tensor:
    """Images of ``rows`` (any order) as an N x C x H x W tensor on ``device``, read in bounded chunks."""
    with h5py.File(path, "r") as handle:
        images = handle["images"]
        height, width, channels = images.shape[1:]
        dtype = torch.from_numpy(np.empty(0, dtype=images.dtype)).dtype
        pixels = torch.empty((len(rows), channels, height, width), dtype=dtype, device=device)
        order = np.argsort(rows, kind="stable")
        sorted_rows = rows[order]
        for start in range(0, images.shape[0], store.READ_CHUNK):
            lo, hi = np.searchsorted(sorted_rows, [start, start + store.READ_CHUNK])
            if lo == hi:
                continue
            chunk = images[start : start + store.READ_CHUNK]
            targets = torch.as_tensor(order[lo:hi], device=device)
            pixels[targets] = channels_first(chunk[sorted_rows[lo:hi] - start], device)
    return pixels


class HostPixels:
    """Images in host memory serving batches on another device (a store larger than the GPU budget)."""

    def __init__(self, pixels: torch.Tensor, device: torch.device) -> None:
        self.host = pixels.pin_memory() if device.type == "cuda" else pixels
        self.device = device
        self.shape = pixels.shape

    def index_select(self, dim: int, indices: torch.Tensor) -> torch.Tensor:
        return self.host.index_select(dim, indices.cpu()).to(self.device, non_blocking=True)


class ChunkedPixels:
    """Images read from the store on demand, for stores larger than memory.

    Rows are grouped into windows of about ``WINDOW_BYTES``; the two most recent
    windows are cached. Batches drawn from :meth:`window_order` touch one or two
    windows and are served from the cache; other batches read their rows
    directly from the file (correct, but slow).
    """

    def __init__(self, path: Path, rows: np.ndarray, device: torch.device, window_bytes: int = WINDOW_BYTES) -> None:
        self.file = h5py.File(path, "r")
        self.images = self.file["images"]
        self.rows = rows
        self.device = device
        height, width, channels = self.images.shape[1:]
        self.shape = torch.Size((len(rows), channels, height, width))
        self.window_rows = max(1, window_bytes // (self.images.dtype.itemsize * height * width * channels))
        self.cache: OrderedDict[int, torch.Tensor] = OrderedDict()

    def _window(self, index: int) -> torch.Tensor:
        if index not in self.cache:
            wanted = self.rows[index * self.window_rows : (index + 1) * self.window_rows]
            lo, hi = int(wanted.min()), int(wanted.max()) + 1
            self.cache[index] = channels_first(self.images[lo:hi][wanted - lo], torch.device("cpu"))
            while len(self.cache) > 2:
                self.cache.popitem(last=False)
        self.cache.move_to_end(index)
        return self.cache[index]

    def index_select(self, dim: int, indices: torch.Tensor) -> torch.Tensor:
        positions = indices.cpu().numpy()
        windows = np.unique(positions // self.window_rows)
        if len(windows) <= 2:
            parts = [self._window(int(w)) for w in windows]
            offsets = np.cumsum([0] + [len(part) for part in parts[:-1]])
            which = np.searchsorted(windows, positions // self.window_rows)
            local = torch.as_tensor(offsets[which] + positions - windows[which] * self.window_rows)
            return torch.cat(parts).index_select(0, local).to(self.device)
        wanted, inverse = np.unique(self.rows[positions], return_inverse=True)
        return channels_first(self.images[wanted][inverse], self.device)

    def window_order(self, generator: torch.Generator) -> torch.Tensor:
        """A shuffle that keeps each window's rows together: windows in random order, rows shuffled within each."""
        n = self.shape[0]
        starts = torch.randperm((n + self.window_rows - 1) // self.window_rows, generator=generator) * self.window_rows
        parts = [start + torch.randperm(min(self.window_rows, n - int(start)), generator=generator) for start in starts]
        return torch.cat(parts)


class DeviceImages:
    """Images of the selected rows of a store, served as normalised channels-first batches.

    ``placement`` says where the pixels live: ``device`` (the whole selection on
    the training device), ``host`` (host memory, batches copied over) or
    ``chunked`` (read from the file in windows). ``memory_budget_bytes``
    overrides the budget (half of the free device or host memory).
    """

    def __init__(self, path: Path, device: torch.device, rows: np.ndarray | None = None, stretch: str = "none",
                 memory_budget_bytes: int | None = None) -> None:
        device = self.device = torch.device(device)
        info = store.read_info(path)
        meta = store.load(path, with_images=False)
        rows = np.arange(info.n_images) if rows is None else np.asarray(rows, dtype=np.int64)
        self.labels = meta.labels[rows]
        self.normalise = Normaliser.for_store(path, device, stretch, meta)
        needed = len(rows) * int(np.prod(info.image_shape)) * np.dtype(info.dtype).itemsize
        device_budget = memory_budget(device) if memory_budget_bytes is None else memory_budget_bytes
        host_budget = memory_budget(torch.device("cpu")) if memory_budget_bytes is None else memory_budget_bytes
        if needed <= device_budget:
            self.placement = "device"
            self.pixels = read_rows(path, rows, device)
        elif device.type != "cpu" and needed <= host_budget:
            self.placement = "host"
            self.pixels = HostPixels(read_rows(path, rows, torch.device("cpu")), device)
        else:
            self.placement = "chunked"
            self.pixels = ChunkedPixels(path, rows, device, min(WINDOW_BYTES, max(device_budget // 2, 1)))

    def __len__(self) -> int:
        return self.pixels.shape[0]

    def batch(self, indices: torch.Tensor) -> torch.Tensor:
        """Normalised (B, C, H, W) float32 batch of the rows ``indices`` (positions in the selection)."""
        return self.normalise(self.pixels.index_select(0, indices))

    def shuffled_order(self, generator: torch.Generator) -> torch.Tensor:
        """An epoch's order of positions: a full shuffle, or a window-keeping one when reading in chunks."""
        if isinstance(self.pixels, ChunkedPixels):
            return self.pixels.window_order(generator).to(self.device)
        return torch.randperm(len(self), generator=generator).to(self.device)


def split_rows(path: Path, splits: tuple[str, ...]) -> np.ndarray:
    """Row indices of a store whose split is one of ``splits``."""
    arrays = store.load(path, with_images=False)
    return np.flatnonzero(np.isin(arrays.split, splits))
