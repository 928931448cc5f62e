"""Encoded images (JPEG, PNG, ... and FITS) decoded in chunks and streamed into a store.

Shared by the ``folder`` and ``hf:`` sources. Each :class:`Entry` says where
its bytes come from (a path, or a function returning a file-like object) and
carries its label, id, split and any catalog columns to keep beside it.
Undecodable images are skipped and reported, or stop the import under
``--strict``; images of several sizes are cropped and resized to one size, with
a warning.
"""

from __future__ import annotations

import importlib.util
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable

import numpy as np
from PIL import Image, UnidentifiedImageError

from astrojepa_cli.data.preprocess import check_crop, crop_resize_batch, crop_resize_pil
from astrojepa_cli.data.sources import ImportOptions
from astrojepa_cli.data.store import StoreInfo
from astrojepa_cli.data.store_writer import StoreWriter
from astrojepa_cli.errors import DataError

FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fz")
PIL_GREY_MODES = ("L", "I", "I;16", "F", "1")
CHUNK = 256
DECODE_THREADS = 4


@dataclass
class Entry:
    """One image to import: ``name`` appears in messages; ``opener`` (if set) returns its bytes as a file;
    ``columns`` holds its catalog values (the same names for every entry of an import)."""

    name: str
    label: int
    object_id: str
    split: str | None
    path: Path | None = None
    opener: Callable[[], IO[bytes]] | None = None
    columns: dict[str, float | str] = field(default_factory=dict)

    def source(self) -> Path | IO[bytes]:
        return self.opener() if self.opener is not None else self.path

    @property
    def is_fits(self) -> bool:
        return self.path is not None and self.path.name.lower().endswith(FITS_SUFFIXES)


def image_kind(entries: list[Entry]) -> str:
    """'FITS' for FITS collections, else the PIL mode: 'L' for greyscale, 'RGB' otherwise (from the first readable image)."""
    if entries and entries[0].is_fits:
        if importlib.util.find_spec("astropy") is None:
            raise DataError("reading FITS images needs astropy: pip install 'astrojepa[fits]'")
        return "FITS"
    for entry in entries[:20]:
        try:
            with Image.open(entry.source()) as image:
                return "L" if image.mode in PIL_GREY_MODES else "RGB"
        except (UnidentifiedImageError, OSError):
            continue
    return "RGB"


def _read_fits(source: Path) -> np.ndarray:
    """The first image HDU of a FITS file as H x W x C float32 (a C x H x W cube is moved channels-last)."""
    from astropy.io import fits

    with fits.open(source, memmap=False) as hdus:
        data = next((hdu.data for hdu in hdus if hdu.data is not None and hdu.data.ndim in (2, 3)), None)
        if data is None:
            raise ValueError("no 2-D or 3-D image HDU")
        array = np.asarray(data, dtype=np.float32)
    return array[..., None] if array.ndim == 2 else np.moveaxis(array, 0, -1)


def _decode(entry: Entry, options: ImportOptions, kind: str) -> tuple[np.ndarray | None, tuple[int, int] | None, str | None]:
    """(cropped and resized H x W x C image, original (width, height), None) or (None, None, problem)."""
    try:
        if kind == "FITS":
            array = _read_fits(entry.source())
            resized = crop_resize_batch(array[None], options.crop, options.size)[0]
            return resized, (array.shape[1], array.shape[0]), None
        with Image.open(entry.source()) as image:
            image.load()
            return crop_resize_pil(image.convert(kind), options.crop, options.size), image.size, None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, TypeError) as exc:
        return None, None, f"{entry.name}: {exc.__class__.__name__}: {exc}"


def write_images(options: ImportOptions, entries: list[Entry], class_names: list[str], provenance: dict) -> StoreInfo:
    """Decode ``entries`` in chunks on a few threads and stream them into ``options.store``."""
    check_crop(options.crop)
    if not entries:
        raise DataError("no images to import")
    kind = image_kind(entries)
    channels = _channel_count(entries, options, kind)
    selected = list(options.channels) if options.channels is not None else list(range(channels))
    if any(c < 0 or c >= channels for c in selected):
        raise DataError(f"--channels {','.join(map(str, selected))} out of range: the images have {channels} channel(s)")
    dtype = np.uint8 if kind != "FITS" else np.float16 if options.float16 else np.float32
    has_split = any(e.split for e in entries)
    provenance = {**provenance, "preprocessing": {"crop": options.crop, "size": options.size, "mode": kind,
                                                  "channels": selected}}
    skipped: list[str] = []
    sizes: set[tuple[int, int]] = set()
    with StoreWriter(options.store, name=options.name, image_shape=(options.size, options.size, len(selected)),
                     dtype=dtype, class_names=class_names, provenance=provenance,
                     column_names=list(entries[0].columns)) as writer:
        with ThreadPoolExecutor(max_workers=DECODE_THREADS) as pool:
            for start in range(0, len(entries), CHUNK):
                batch = entries[start : start + CHUNK]
                kept = []
                for entry, (image, size, problem) in zip(batch, pool.map(lambda e: _decode(e, options, kind), batch)):
                    if problem is None and image.shape[-1] != channels:
                        problem = f"{entry.name}: has {image.shape[-1]} channel(s), expected {channels}"
                    if problem is not None:
                        if options.strict:
                            raise DataError(f"cannot decode image {problem}")
                        skipped.append(problem)
                        continue
                    sizes.add(size)
                    kept.append((entry, image[..., selected]))
                if kept:
                    writer.append(
                        np.stack([image for _, image in kept]),
                        [e.label for e, _ in kept],
                        [e.object_id for e, _ in kept],
                        [e.split or "train" for e, _ in kept] if has_split else None,
                        columns={name: [e.columns[name] for e, _ in kept] for name in entries[0].columns},
                    )
        if skipped:
            options.warnings.append(f"skipped {len(skipped)} undecodable image(s): {'; '.join(skipped[:5])}")
        if len(sizes) > 1:
            options.warnings.append(f"images had {len(sizes)} different sizes; all were cropped and resized to {options.size}px")
        writer.provenance["skipped"] = skipped
        return writer.finish(options.seed)


def _channel_count(entries: list[Entry], options: ImportOptions, kind: str) -> int:
    if kind == "L":
        return 1
    if kind == "RGB":
        return 3
    for entry in entries[:20]:
        image, _, _ = _decode(entry, options, kind)
        if image is not None:
            return image.shape[-1]
    raise DataError(f"none of the first {min(len(entries), 20)} FITS files could be read")
