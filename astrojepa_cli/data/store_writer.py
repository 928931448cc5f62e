"""Writing a store: every source ends here, through :class:`StoreWriter`.

The writer streams chunks to a temporary file, validates them at the boundary
(shape, dtype, NaN/Inf, label range, unique ids) and renames the file into place
only when it is complete. The layout it writes is described in
:mod:`astrojepa_cli.data.store`.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Sequence

import h5py
import numpy as np

from astrojepa_cli.atomic import commit, disk_full_error, temporary_sibling
from astrojepa_cli.data.splits import stratified_split
from astrojepa_cli.data.store import SCHEMA_VERSION, SPLITS, StoreInfo, content_sha256, read_info
from astrojepa_cli.errors import DataError

STATS_BLOCK = 1 << 20
STRING = h5py.string_dtype("utf-8")


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
        self._id_ds = self._file.create_dataset("ids", shape=(0,), maxshape=(None,), dtype=STRING, chunks=(1024,))
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
        self._file.create_dataset("split", data=split.astype(str).tolist(), dtype=STRING)
        for name, parts in self._columns.items():
            values = np.concatenate(parts)
            numeric = values.dtype.kind in "fiu"
            self._file.create_dataset(f"columns/{name}", data=values.astype(np.float64) if numeric
                                      else values.astype(str).tolist(), dtype="f8" if numeric else STRING)
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
