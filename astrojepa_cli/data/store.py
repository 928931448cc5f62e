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

Every source ends here through :class:`StoreWriter`, which streams chunks to a
temporary file, validates them at the boundary (shape, dtype, NaN/Inf, label
range) and renames the file into place only when it is complete.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import h5py
import numpy as np

from astrojepa_cli.atomic import commit, disk_full_error, temporary_sibling
from astrojepa_cli.errors import DataError

SCHEMA_VERSION = 1
SPLITS = ("train", "valid", "test")
READ_CHUNK = 512
STATS_BLOCK = 1 << 20
_STR = h5py.string_dtype("utf-8")


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


def stratified_split(labels: np.ndarray, seed: int, valid: float = 0.1, test: float = 0.1) -> np.ndarray:
    """Seeded split into train/valid/test that keeps class proportions.

    Unlabelled items (label -1) are split at random with the same fractions.
    """
    rng = np.random.default_rng(seed)
    split = np.empty(len(labels), dtype=object)
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        n_test = int(round(test * len(members)))
        n_valid = int(round(valid * len(members)))
        split[members[:n_test]] = "test"
        split[members[n_test : n_test + n_valid]] = "valid"
        split[members[n_test + n_valid :]] = "train"
    return split


class _RecordingFile(io.FileIO):
    """The temporary store file: the first write error is recorded in ``failure`` instead of raised.

    HDF5 does not recover from a failed write (on a full disk its file can then
    be neither flushed nor closed, and the process crashes at exit). So after a
    failure every write is dropped, HDF5 carries on unaware, and
    :class:`StoreWriter` checks ``failure`` after each chunk and before the
    rename, deleting the file instead of committing it.
    """

    failure: OSError | None = None

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        written = 0
        while self.failure is None and written < len(view):
            try:
                written += super().write(view[written:])  # a short write (disk nearly full) is continued
            except OSError as exc:
                self.failure = exc
        return len(view)

    def truncate(self, size: int | None = None) -> int:
        if self.failure is None:
            try:
                return super().truncate(size)
            except OSError as exc:
                self.failure = exc
        return self.tell() if size is None else size

    def check(self) -> None:
        """Raise the recorded write error, if any."""
        if self.failure is not None:
            raise self.failure


class StoreWriter:
    """Stream images into a new store; nothing appears at ``path`` until :meth:`finish`.

    Use as a context manager; leaving the block without ``finish`` (an error,
    Ctrl-C) deletes the temporary file and leaves any earlier store untouched.
    """

    def __init__(
        self,
        path: Path,
        *,
        name: str,
        image_shape: Sequence[int],
        dtype: np.dtype | str,
        class_names: Sequence[str],
        provenance: dict,
        target_names: Sequence[str] = (),
        column_names: Sequence[str] = (),
        chunk_images: int = 64,
    ) -> None:
        self.path = Path(path)
        self.name = name
        self.image_shape = tuple(int(s) for s in image_shape)
        self.dtype = np.dtype(dtype)
        if len(self.image_shape) != 3:
            raise DataError(f"images must be H x W x C, got shape {self.image_shape}")
        if self.dtype not in (np.uint8, np.float16, np.float32):
            raise DataError(f"image dtype must be uint8, float16 or float32, got {self.dtype}")
        self.class_names = list(class_names)
        self.provenance = dict(provenance)
        self.target_names = list(target_names)
        self.chunk_images = chunk_images
        self.count = 0
        self._labels: list[np.ndarray] = []
        self._splits: list[np.ndarray] = []
        self._columns: dict[str, list[np.ndarray]] = {name: [] for name in column_names}
        self._ids: set[str] = set()
        self._channel_sum = np.zeros(self.image_shape[-1])
        self._channel_sq = np.zeros(self.image_shape[-1])
        self._ones = np.ones(STATS_BLOCK)

    def __enter__(self) -> "StoreWriter":
        self._tmp = temporary_sibling(self.path)
        self._sink = _RecordingFile(self._tmp, "w+")
        self._file = h5py.File(self._sink, "w")
        chunks = (self.chunk_images, *self.image_shape)
        self._images = self._file.create_dataset(
            "images", shape=(0, *self.image_shape), maxshape=(None, *self.image_shape),
            dtype=self.dtype, chunks=chunks,
        )
        self._id_ds = self._file.create_dataset("ids", shape=(0,), maxshape=(None,), dtype=_STR, chunks=(1024,))
        self._targets = {
            t: self._file.create_dataset(f"targets/{t}", shape=(0,), maxshape=(None,), dtype="f4", chunks=(1024,))
            for t in self.target_names
        }
        return self

    def append(
        self,
        images: np.ndarray,
        labels: Sequence[int] | np.ndarray,
        ids: Sequence[str],
        splits: Sequence[str] | None = None,
        targets: dict[str, np.ndarray] | None = None,
        columns: dict[str, Sequence] | None = None,
    ) -> None:
        """Validate and write one chunk of images with their metadata (``columns``: one value per image each)."""
        images = np.asarray(images)
        n = len(images)
        if images.shape[1:] != self.image_shape:
            raise DataError(f"image shape {images.shape[1:]} does not match the store's {self.image_shape}")
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        if len(labels) != n or len(ids) != n:
            raise DataError(f"{n} images but {len(labels)} labels and {len(ids)} ids in one chunk")
        if self.class_names and (labels.max(initial=-1) >= len(self.class_names) or labels.min(initial=0) < -1):
            raise DataError(f"labels must lie in -1..{len(self.class_names) - 1} for classes {self.class_names}")
        if images.dtype.kind == "f" and not np.isfinite(images).all():
            bad = int((~np.isfinite(images.reshape(n, -1))).any(axis=1).argmax())
            raise DataError(f"image '{ids[bad]}' has NaN or Inf pixels")
        duplicate = next((i for i in ids if i in self._ids), None)
        if duplicate is not None:
            raise DataError(f"duplicate id '{duplicate}'")
        self._ids.update(ids)
        start = self.count
        self.count += n
        self._images.resize(self.count, axis=0)
        self._images[start:] = images.astype(self.dtype, copy=False)
        self._id_ds.resize(self.count, axis=0)
        self._id_ds[start:] = list(ids)
        for name, ds in self._targets.items():
            values = np.asarray((targets or {}).get(name, np.full(n, np.nan)), dtype=np.float32)
            ds.resize(self.count, axis=0)
            ds[start:] = values
        self._labels.append(labels)
        self._splits.append(np.asarray(splits if splits is not None else [""] * n, dtype=object))
        for name, parts in self._columns.items():
            parts.append(np.asarray((columns or {}).get(name, [""] * n)))
        self._file.flush()
        self._sink.check()
        pixels = images.reshape(-1, self.image_shape[-1])
        for start in range(0, len(pixels), STATS_BLOCK):  # float64 copies of a bounded block, not the chunk
            block = pixels[start : start + STATS_BLOCK].astype(np.float64)
            ones = self._ones[: len(block)]  # a matrix-vector product sums (M, C) far faster than sum(axis=0)
            self._channel_sum += ones @ block
            self._channel_sq += ones @ np.square(block)

    def finish(self, split_seed: int = 0) -> StoreInfo:
        """Write labels and split, hash the content, and move the store into place."""
        if self.count == 0:
            raise DataError("no images were imported; nothing to store")
        labels = np.concatenate(self._labels)
        split = np.concatenate(self._splits)
        if (split == "").any():
            if not (split == "").all():
                raise DataError("some items have a split and some do not; give every item a split or none")
            split = stratified_split(labels, split_seed)
            self.provenance["split"] = f"stratified 80/10/10, seed {split_seed}"
        unknown = set(split) - set(SPLITS)
        if unknown:
            raise DataError(f"unknown split names {sorted(unknown)}; use {', '.join(SPLITS)}")
        self._file.create_dataset("labels", data=labels)
        self._file.create_dataset("split", data=split.astype(str).tolist(), dtype=_STR)
        for name, parts in self._columns.items():
            values = np.concatenate(parts)
            numeric = values.dtype.kind in "fiu"
            self._file.create_dataset(f"columns/{name}", data=values.astype(np.float64) if numeric
                                      else values.astype(str).tolist(), dtype="f8" if numeric else _STR)
        pixel_count = self.count * self.image_shape[0] * self.image_shape[1]
        mean = self._channel_sum / pixel_count
        std = np.sqrt(np.maximum(self._channel_sq / pixel_count - mean**2, 0.0))
        attrs = self._file.attrs
        attrs["schema_version"] = SCHEMA_VERSION
        attrs["name"] = self.name
        attrs["class_names"] = json.dumps(self.class_names)
        attrs["provenance"] = json.dumps(self.provenance)
        attrs["channel_mean"] = json.dumps(mean.tolist())
        attrs["channel_std"] = json.dumps(std.tolist())
        attrs["content_sha256"] = content_sha256(self._file)
        self._file.close()
        self._sink.check()
        self._sink.close()
        commit(self._tmp, self.path)
        return read_info(self.path)

    def __exit__(self, exc_type, exc, tb) -> bool:
        if self._file.id.valid:
            self._file.close()
        self._sink.close()
        self._tmp.unlink(missing_ok=True)
        full = disk_full_error(exc, self.path) if isinstance(exc, OSError) else None
        if full is not None:
            raise full from exc
        return False


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
