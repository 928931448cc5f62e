"""Array datasets: ``npz`` and ``h5`` files, and the streaming writer that every array source shares.

:func:`write_arrays` takes images as any sliceable N x H x W [x C] array (an
``h5py.Dataset`` is read slice by slice, so the file never has to fit in
memory), checks counts, dtypes and values at the boundary, applies channel
selection, centre crop and resize, and streams the result into a store.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from astrojepa_cli.data.preprocess import check_crop, crop_resize_batch
from astrojepa_cli.data.sources import ImportOptions
from astrojepa_cli.data.store import StoreInfo, open_hdf5
from astrojepa_cli.data.store_writer import StoreWriter
from astrojepa_cli.errors import DataError

CHUNK_BYTES = 32 * 2**20
FLOAT16_MAX = float(np.finfo(np.float16).max)
MAX_CHANNELS = 16


@dataclass
class ArrayDataset:
    """The arrays that make a dataset, as found in the source file.

    ``images`` is N x H x W, N x H x W x C or N x C x H x W (detected when the
    last axis is too long to be channels); it only needs ``shape``, ``dtype``
    and slicing along the first axis.
    """

    images: Any
    labels: np.ndarray | None = None
    class_names: list[str] = field(default_factory=list)
    targets: dict[str, np.ndarray] = field(default_factory=dict)
    ids: Sequence[str] | None = None
    split: np.ndarray | None = None
    id_prefix: str = ""


def dataset_key(handle: Any, key: str | None, default: str | None, what: str, path: Path) -> str | None:
    """The key to read for ``what``: ``key`` if given (it must exist), else ``default`` if present."""
    available = sorted(handle.keys())
    if key is not None:
        if key not in handle:
            raise DataError(f"{path} has no {what} '{key}' (keys: {', '.join(available)})")
        return key
    if default is not None and default in handle:
        return default
    return None


def integer_labels(values: np.ndarray, source: str) -> np.ndarray:
    """Class labels as int64; float labels must be whole numbers (1.0, not 0.7)."""
    values = np.asarray(values).reshape(-1)
    if values.dtype.kind == "f":
        if not np.isfinite(values).all() or (values != np.round(values)).any():
            raise DataError(f"{source}: labels must be whole numbers (class indices), found e.g. "
                            f"{values[~np.isfinite(values) | (values != np.round(values))][0]}")
    elif values.dtype.kind not in "iub":
        raise DataError(f"{source}: labels must be integers, got dtype {values.dtype}")
    return values.astype(np.int64)


def store_dtype(source_dtype: np.dtype, float16: bool) -> np.dtype:
    """uint8 stays uint8; any other numeric type is stored as float32 (float16 on request)."""
    if source_dtype == np.uint8:
        return np.dtype(np.uint8)
    if source_dtype.kind not in "fiub":
        raise DataError(f"images must be numeric, got dtype {source_dtype}")
    return np.dtype(np.float16 if float16 else np.float32)


def _layout(shape: tuple[int, ...]) -> str:
    """NHW, NHWC or NCHW: the channel axis is the shorter of axes 1 and 3 (the last one on a tie)."""
    if len(shape) == 3:
        return "NHW"
    if len(shape) == 4 and min(shape[1], shape[3]) <= MAX_CHANNELS:
        return "NHWC" if shape[3] <= shape[1] else "NCHW"
    raise DataError(f"images must be N x H x W, N x H x W x C or N x C x H x W (C <= {MAX_CHANNELS}), "
                    f"got shape {tuple(shape)}")


def _as_nhwc(chunk: np.ndarray, layout: str) -> np.ndarray:
    if layout == "NHW":
        return chunk[..., None]
    if layout == "NCHW":
        return chunk.transpose(0, 2, 3, 1)
    return chunk


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__


def write_arrays(options: ImportOptions, data: ArrayDataset, provenance: dict, source: str) -> StoreInfo:
    """Validate ``data`` and stream it into ``options.store`` in chunks of about ``CHUNK_BYTES``."""
    check_crop(options.crop)
    shape = tuple(int(s) for s in data.images.shape)
    layout = _layout(shape)
    n = shape[0]
    if n == 0:
        raise DataError(f"{source} holds no images")
    channels = 1 if layout == "NHW" else shape[3] if layout == "NHWC" else shape[1]
    labels = np.full(n, -1, dtype=np.int64) if data.labels is None else integer_labels(data.labels, source)
    if len(labels) != n:
        raise DataError(f"{source}: {n} images but {len(labels)} labels")
    for name, values in data.targets.items():
        if len(values) != n:
            raise DataError(f"{source}: {n} images but {len(values)} values of target '{name}'")
    if data.split is not None and len(data.split) != n:
        raise DataError(f"{source}: {n} images but {len(data.split)} split entries")
    selected = list(options.channels) if options.channels is not None else list(range(channels))
    if any(c < 0 or c >= channels for c in selected):
        raise DataError(f"--channels {','.join(map(str, selected))} out of range: the images have {channels} channel(s)")
    class_names = data.class_names or [f"class_{i}" for i in range(int(labels.max(initial=-1)) + 1)]
    dtype = store_dtype(np.dtype(data.images.dtype), options.float16)
    provenance = {**provenance, "preprocessing": {"crop": options.crop, "size": options.size, "channels": selected,
                                                  "layout": layout, "dtype": str(dtype)}}
    per_image = int(np.prod(shape[1:])) * np.dtype(data.images.dtype).itemsize
    rows_per_chunk = max(1, CHUNK_BYTES // per_image)
    with StoreWriter(options.store, name=options.name, image_shape=(options.size, options.size, len(selected)),
                     dtype=dtype, class_names=class_names, provenance=provenance,
                     target_names=sorted(data.targets)) as writer:
        for start in range(0, n, rows_per_chunk):
            stop = min(start + rows_per_chunk, n)
            try:
                chunk = np.asarray(data.images[start:stop])
            except (OSError, ValueError) as exc:
                raise DataError(f"{source}: cannot read images {start}..{stop - 1} (corrupt file?): "
                                f"{_first_line(exc)}") from None
            chunk = _as_nhwc(chunk, layout)[..., selected]
            if dtype != np.uint8:
                chunk = chunk.astype(np.float32, copy=False)
                if not np.isfinite(chunk).all():
                    bad = start + int((~np.isfinite(chunk.reshape(len(chunk), -1))).any(axis=1).argmax())
                    raise DataError(f"{source}: image {bad} has NaN or Inf pixels")
                if dtype == np.float16 and np.abs(chunk).max() > FLOAT16_MAX:
                    raise DataError(f"{source}: pixel values exceed the float16 range; import without --float16")
            ids = data.ids[start:stop] if data.ids is not None else [f"{data.id_prefix}{i}" for i in range(start, stop)]
            writer.append(crop_resize_batch(chunk, options.crop, options.size), labels[start:stop], list(ids),
                          None if data.split is None else list(data.split[start:stop]),
                          {name: values[start:stop] for name, values in data.targets.items()})
        return writer.finish(options.seed)


def import_array_file(options: ImportOptions, kind: str, path: Path, images_key: str | None,
                      labels_key: str | None) -> StoreInfo:
    """Import the arrays ``images_key`` (default ``images``) and ``labels_key`` (default ``labels``, optional)."""
    path = Path(path)
    provenance = {"source": kind, "origin": str(path.resolve())}
    if kind == "h5":
        with open_hdf5(path) as handle:
            data = _arrays_from(handle, images_key, labels_key, path, provenance)
            return write_arrays(options, data, provenance, path.name)
    if not path.is_file():
        raise DataError(f"file not found: {path}")
    try:
        with np.load(path) as archive:
            data = _arrays_from(archive, images_key, labels_key, path, provenance)
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise DataError(f"{path} is not a readable .npz file (truncated or corrupt?): {_first_line(exc)}") from None
    except ValueError as exc:
        # np.load refuses object arrays: they need pickle, which is never allowed on user files.
        raise DataError(f"{path}: {_first_line(exc)}") from None
    return write_arrays(options, data, provenance, path.name)


def _arrays_from(handle: Any, images_key: str | None, labels_key: str | None, path: Path,
                 provenance: dict) -> ArrayDataset:
    """The images and labels arrays of an open npz or HDF5 file (npz arrays are read whole here)."""
    images = dataset_key(handle, images_key, "images", "images array", path)
    if images is None:
        raise DataError(f"{path} has no 'images' array (keys: {', '.join(sorted(handle.keys()))}); pass --images-key")
    labels = dataset_key(handle, labels_key, "labels", "labels array", path)
    provenance["keys"] = {"images": images, "labels": labels}
    try:
        pixels = handle[images]
        if not hasattr(pixels, "shape"):
            raise DataError(f"{path}: '{images}' is a group, not an array; pass the array's full key")
        return ArrayDataset(images=pixels, labels=None if labels is None else np.asarray(handle[labels]),
                            id_prefix=f"{path.stem}-")
    except OSError as exc:
        raise DataError(f"{path}: cannot read its arrays (truncated or corrupt?): {_first_line(exc)}") from None
