"""The canonical on-disk store: one HDF5 file per dataset.

Layout (``SCHEMA_VERSION`` 1)::

    /images   N x H x W x C   uint8 (optical, radio) or float16/float32 (e.g. jets)
    /labels   N               int64, -1 where unlabelled
    /ids      N               UTF-8 strings, unique
    /split    N               UTF-8 strings: "train", "valid" or "test"
    /targets/<name>  N        float32 regression targets (optional)
    /columns/<name>  N        catalog columns kept beside the images: float64 or UTF-8 strings (optional)
    attrs: schema_version, name, class_names (JSON), provenance (JSON),
           content_sha256, channel_mean / channel_std (JSON, float stores)

Stores are written by :class:`astrojepa_cli.data.store_writer.StoreWriter`; this
module reads them: their metadata, a verification of their content hash, and
their arrays. A store's split is read as written, never drawn again.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

import h5py
import numpy as np

from astrojepa_cli import paths
from astrojepa_cli.errors import DataError

SCHEMA_VERSION = 1
SPLITS = ("train", "valid", "test")
READ_CHUNK = 512
log = logging.getLogger("astrojepa")


@dataclass
class StoreInfo:
    """What a store holds, read from its metadata (cheap: no pixel reads)."""

    name: str
    path: str
    n_images: int
    image_shape: list[int]
    dtype: str
    classes: list[str]
    splits: dict[str, int]
    sha256: str
    targets: list[str] = field(default_factory=list)
    provenance: dict = field(default_factory=dict)
    columns: list[str] = field(default_factory=list)

    @property
    def channels(self) -> int:
        return self.image_shape[-1]

    def to_json(self) -> dict:
        return asdict(self)


def content_sha256(handle: h5py.File) -> str:
    """SHA-256 over images, labels, ids, split and targets, read in bounded chunks."""
    digest = hashlib.sha256()
    images = handle["images"]
    digest.update(json.dumps([list(images.shape), str(images.dtype)]).encode())
    for start in range(0, images.shape[0], READ_CHUNK):
        digest.update(np.ascontiguousarray(images[start : start + READ_CHUNK]).tobytes())
    digest.update(np.ascontiguousarray(handle["labels"][:], dtype=np.int64).tobytes())
    for key in ("ids", "split"):
        digest.update("\n".join(handle[key].asstr()[:]).encode())
    for name in sorted(handle.get("targets", {})):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(handle["targets"][name][:], dtype=np.float32).tobytes())
    for name, values in sorted(handle.get("columns", {}).items()):
        digest.update(name.encode())
        digest.update("\n".join(values.asstr()[:]).encode() if values.dtype.kind == "O" else values[:].tobytes())
    return digest.hexdigest()


def open_hdf5(path: Path, what: str = "HDF5 file", remedy: str = "truncated or corrupt?") -> h5py.File:
    """Open an HDF5 file for reading; a missing, truncated or foreign file is one clear :class:`DataError`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} not found: {path}")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise DataError(f"{path} is not a readable {what} ({remedy}): {reason}") from None


def _open(path: Path) -> h5py.File:
    return open_hdf5(path, "store", "re-import it")


REQUIRED_ATTRS = ("schema_version", "name", "class_names", "provenance", "content_sha256", "channel_mean",
                  "channel_std")
JSON_ATTRS = ("class_names", "provenance", "channel_mean", "channel_std")


def _check_json_attrs(path: Path, attrs: h5py.AttributeManager) -> None:
    for key in JSON_ATTRS:
        try:
            json.loads(attrs[key])
        except (TypeError, ValueError):
            raise DataError(f"{path}: attribute '{key}' is not valid JSON; re-import it") from None


def read_info(path: Path) -> StoreInfo:
    """Metadata of the store at ``path``; raises :class:`DataError` if it is not a valid store."""
    with _open(path) as handle:
        missing = [k for k in ("images", "labels", "ids", "split") if k not in handle]
        missing += [k for k in REQUIRED_ATTRS if k not in handle.attrs]
        if missing:
            raise DataError(f"{path} is not an astrojepa store (missing {', '.join(missing)}); re-import it")
        attrs = handle.attrs
        _check_json_attrs(path, attrs)
        if handle["images"].ndim != 4:
            raise DataError(f"{path}: images must be N x H x W x C, got shape {handle['images'].shape}; re-import it")
        split = handle["split"].asstr()[:]
        names, counts = np.unique(split, return_counts=True)
        return StoreInfo(
            name=str(attrs["name"]),
            path=str(Path(path).resolve()),
            n_images=int(handle["images"].shape[0]),
            image_shape=[int(s) for s in handle["images"].shape[1:]],
            dtype=str(handle["images"].dtype),
            classes=json.loads(attrs["class_names"]),
            splits={str(n): int(c) for n, c in zip(names, counts)},
            sha256=str(attrs["content_sha256"]),
            targets=sorted(handle.get("targets", {})),
            provenance=json.loads(attrs["provenance"]),
            columns=sorted(handle.get("columns", {})),
        )


def list_stores(root: Path | None = None) -> list[tuple[StoreInfo, int]]:
    """Every readable store under ``ROOT/data`` with its size on disk in bytes, by file name; a file
    that is not a valid store is skipped with a warning."""
    stores = []
    for path in sorted(paths.data_dir(root).glob("*.h5")):
        try:
            stores.append((read_info(path), path.stat().st_size))
        except DataError as exc:
            log.warning("%s", exc)
    return stores


def verify(path: Path) -> StoreInfo:
    """Re-hash the content and validate the schema; raise :class:`DataError` on any mismatch."""
    info = read_info(path)
    with _open(path) as handle:
        n = info.n_images
        for key in ("labels", "ids", "split"):
            if handle[key].shape != (n,):
                raise DataError(f"{path}: '{key}' has {handle[key].shape[0]} entries for {n} images")
        actual = content_sha256(handle)
    if actual != info.sha256:
        raise DataError(f"{path}: content hash mismatch (stored {info.sha256[:12]}…, actual {actual[:12]}…); re-import it")
    return info


@dataclass
class StoreArrays:
    """Everything but the pixels, plus the pixels of the selected rows."""

    images: np.ndarray
    labels: np.ndarray
    ids: np.ndarray
    split: np.ndarray
    targets: dict[str, np.ndarray]
    channel_mean: np.ndarray
    channel_std: np.ndarray
    columns: dict[str, np.ndarray] = field(default_factory=dict)


def check_finite(path: Path, pixels: np.ndarray, first_row: int = 0) -> None:
    """Refuse NaN or Inf pixels (a store written by other tools may hold them)."""
    if pixels.dtype.kind == "f" and not np.isfinite(pixels).all():
        row = first_row + int(np.flatnonzero(~np.isfinite(pixels).reshape(len(pixels), -1).all(axis=1))[0])
        raise DataError(f"{path}: image {row} has NaN or Inf pixels; clean the source and re-import it")


def iter_image_chunks(path: Path, chunk: int = READ_CHUNK) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(start, images)`` chunks so callers can stream a store of any size."""
    with _open(path) as handle:
        images = handle["images"]
        for start in range(0, images.shape[0], chunk):
            pixels = images[start : start + chunk]
            check_finite(path, pixels, start)
            yield start, pixels


def load(path: Path, with_images: bool = True) -> StoreArrays:
    """Read a whole store into memory (labels, ids, split and, optionally, images)."""
    with _open(path) as handle:
        images = handle["images"]
        if with_images:
            pixels = np.empty(images.shape, dtype=images.dtype)
            for start in range(0, images.shape[0], READ_CHUNK):
                images.read_direct(pixels, np.s_[start : start + READ_CHUNK], np.s_[start : start + READ_CHUNK])
        else:
            pixels = np.empty((0, *images.shape[1:]), dtype=images.dtype)
        return StoreArrays(
            images=pixels,
            labels=handle["labels"][:],
            ids=np.asarray(handle["ids"].asstr()[:]),
            split=np.asarray(handle["split"].asstr()[:]),
            targets={k: handle["targets"][k][:] for k in handle.get("targets", {})},
            channel_mean=np.asarray(json.loads(handle.attrs["channel_mean"]), dtype=np.float32),
            channel_std=np.asarray(json.loads(handle.attrs["channel_std"]), dtype=np.float32),
            columns={name: values.asstr()[:].astype(str) if values.dtype.kind == "O" else values[:]
                     for name, values in handle.get("columns", {}).items()},
        )
