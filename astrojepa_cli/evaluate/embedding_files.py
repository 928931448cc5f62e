"""Embedding files other tools read: safetensors, ``.npy`` and parquet, to a path or a byte stream.

Rows are in store order. npy and parquet are written chunk by chunk as the
embeddings arrive, so memory stays bounded by one chunk; safetensors needs the
whole (N, D) matrix at once (its header lists every tensor's byte offsets).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import BinaryIO, Iterable

import numpy as np

from astrojepa_cli.data.store import StoreArrays
from astrojepa_cli.errors import UserError

FORMATS = ("safetensors", "npy", "parquet")


def check_format(fmt: str) -> None:
    """A clear error for an unknown format, or for parquet without pyarrow."""
    if fmt not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)} (got {fmt})")
    if fmt == "parquet":
        _pyarrow()


def _pyarrow():
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise UserError("--format parquet needs pyarrow: pip install pyarrow (or pip install 'astrojepa[test]')") from None
    return pyarrow


def write_npy(chunks: Iterable[np.ndarray], n: int, dim: int, stream: BinaryIO) -> None:
    """A version-1.0 ``.npy`` of shape (n, dim) float32: the header, then each chunk's raw rows."""
    np.lib.format.write_array_header_1_0(stream, {"descr": np.dtype("<f4").str, "fortran_order": False,
                                                  "shape": (n, dim)})
    for chunk in chunks:
        stream.write(np.ascontiguousarray(chunk, dtype="<f4").tobytes())


def parquet_columns(meta: StoreArrays, class_names: list[str], rows: slice, embeddings: np.ndarray) -> dict:
    """Columns of one row group: id, split, label, label_name, target_<name>..., e0...e{D-1}."""
    labels = meta.labels[rows]
    columns = {
        "id": meta.ids[rows].tolist(),
        "split": meta.split[rows].tolist(),
        "label": labels,
        "label_name": [class_names[v] if 0 <= v < len(class_names) else None for v in labels],
    }
    columns.update({f"target_{name}": values[rows] for name, values in meta.targets.items()})
    columns.update({f"e{j}": embeddings[:, j] for j in range(embeddings.shape[1])})
    return columns


def write_parquet(chunks: Iterable[np.ndarray], meta: StoreArrays, class_names: list[str], stream: BinaryIO,
                  metadata: dict[str, str]) -> None:
    """One parquet row group per chunk; ``metadata`` goes into the file's key-value metadata."""
    pa = _pyarrow()
    writer = None
    start = 0
    for chunk in chunks:
        table = pa.table(parquet_columns(meta, class_names, slice(start, start + len(chunk)), chunk))
        if writer is None:
            schema = table.schema.with_metadata({k: str(v) for k, v in metadata.items()})
            writer = pa.parquet.ParquetWriter(stream, schema)
        writer.write_table(table.cast(writer.schema))
        start += len(chunk)
    writer.close()


def safetensors_bytes(chunks: Iterable[np.ndarray], meta: StoreArrays, metadata: dict[str, str]) -> bytes:
    """Embeddings, labels and targets as tensors; ids and splits as JSON in the metadata."""
    import torch
    from safetensors.torch import save

    tensors = {"embeddings": torch.from_numpy(np.concatenate(list(chunks))), "labels": torch.from_numpy(meta.labels)}
    tensors.update({f"targets.{k}": torch.from_numpy(v) for k, v in meta.targets.items()})
    return save(tensors, {**metadata, "ids": json.dumps(meta.ids.tolist()), "split": json.dumps(meta.split.tolist())})


def write_embeddings(fmt: str, chunks: Iterable[np.ndarray], meta: StoreArrays, class_names: list[str], dim: int,
                     stream: BinaryIO, metadata: dict[str, str]) -> None:
    """Write the embeddings arriving in ``chunks`` to ``stream`` in format ``fmt``."""
    if fmt == "npy":
        write_npy(chunks, len(meta.ids), dim, stream)
    elif fmt == "parquet":
        write_parquet(chunks, meta, class_names, stream, metadata)
    else:
        stream.write(safetensors_bytes(chunks, meta, metadata))


def resolve_format(fmt: str | None, out: str | None) -> str:
    """``--format`` if given, else the suffix of ``--out`` when it names a format, else safetensors."""
    if fmt is None:
        suffix = Path(out).suffix.lstrip(".") if out and out != "-" else ""
        fmt = suffix if suffix in FORMATS else "safetensors"
    check_format(fmt)
    return fmt
