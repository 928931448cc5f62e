"""Thumbnails of store images as small PNGs, drawn with the same display stretch as the figures' mosaics."""

from __future__ import annotations

import base64
import functools
import io
import math
import threading
from pathlib import Path

import numpy as np
from PIL import Image

from astrojepa_cli.data import store
from astrojepa_cli.evaluate.features import images_at
from astrojepa_cli.evaluate.figures.plotting import display_image

SIDE = 64  # pixels; the page shows thumbnails at this size or larger
MIN_SIDE = 16
SAMPLE = 200  # images encoded to estimate a page's thumbnail bytes
CACHED = 20_000  # thumbnails a server keeps in memory (a few kB each)


def thumbnail_png(image: np.ndarray, side: int = SIDE) -> bytes:
    """One H x W x C store image as a PNG at most ``side`` pixels wide (percentile stretch, as in mosaics)."""
    pixels = np.round(display_image(image) * 255).astype(np.uint8)
    picture = Image.fromarray(pixels)
    if max(picture.size) > side:
        picture.thumbnail((side, side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def side_for_budget(store_path: Path, budget_bytes: int, side: int = SIDE) -> int:
    """The largest side (at most ``side``) at which the store's thumbnails, inlined as data URIs, are
    expected to fit in ``budget_bytes``: their mean size on an evenly spaced sample times the count,
    shrinking the side until that fits (or reaches ``MIN_SIDE``)."""
    n = store.read_info(store_path).n_images
    rows = np.unique(np.linspace(0, n - 1, min(n, SAMPLE)).astype(np.int64))
    sample = images_at(store_path, rows)
    while side > MIN_SIDE:
        expected = n * np.mean([len(data_uri(thumbnail_png(image, side))) for image in sample])
        if expected <= budget_bytes:
            return side
        # A PNG shrinks more slowly than its pixel count: step by at most the area ratio, at least 10 %.
        side = max(MIN_SIDE, min(int(side * 0.9), int(side * math.sqrt(budget_bytes / expected))))
    return MIN_SIDE


def inline_thumbnails(store_path: Path, side: int, chunk: int = store.READ_CHUNK) -> list[str]:
    """A PNG data URI for every image of the store, in store order."""
    uris: list[str] = []
    for _, images in store.iter_image_chunks(store_path, chunk):
        uris.extend(data_uri(thumbnail_png(image, side)) for image in images)
    return uris


class ThumbnailReader:
    """PNG thumbnails read from the store on demand (one row at a time), for a page served over HTTP."""

    def __init__(self, store_path: Path, side: int = SIDE) -> None:
        self.store_path, self.side = store_path, side
        self.n = store.read_info(store_path).n_images
        self._lock = threading.Lock()  # h5py reads one at a time
        self._encoded = functools.lru_cache(maxsize=CACHED)(self._encode)

    def png(self, row: int) -> bytes:
        """The thumbnail of store row ``row``; IndexError outside the store."""
        if not 0 <= row < self.n:
            raise IndexError(row)
        with self._lock:
            return self._encoded(row)

    def _encode(self, row: int) -> bytes:
        return thumbnail_png(images_at(self.store_path, np.array([row]))[0], self.side)
