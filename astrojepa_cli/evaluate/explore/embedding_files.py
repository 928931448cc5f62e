"""Embedding files other tools read: safetensors, ``.npy``, parquet, CSV, FITS and VOTable, to a path or a byte stream.

Rows are in store order. Every format but npy carries, beside the embeddings,
each object's id, split, label, targets and the catalog columns the store kept
(e.g. ``ra``, ``dec``). npy, parquet and CSV are written chunk by chunk as the
embeddings arrive, so memory stays bounded by one chunk; safetensors, FITS and
VOTable need the whole (N, D) matrix at once (their headers describe every
column before the data).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import BinaryIO, Iterable

import numpy as np

from astrojepa_cli.data.store import StoreArrays
from astrojepa_cli.errors import UserError

FORMATS = ("safetensors", "npy", "parquet", "csv", "fits", "votable")
SUFFIXES = {".safetensors": "safetensors", ".npy": "npy", ".parquet": "parquet", ".csv": "csv", ".fits": "fits",
            ".fit": "fits", ".vot": "votable", ".votable": "votable"}
ASTROPY_FORMATS = ("fits", "votable")


def check_format(fmt: str) -> None:
    """A clear error for an unknown format, or for a format whose optional library is missing."""
    if fmt not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)} (got {fmt})")
    if fmt == "parquet":
        _pyarrow()
    if fmt in ASTROPY_FORMATS:
        _astropy_table()


def _pyarrow():
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise UserError("--format parquet needs pyarrow: pip install 'astrojepa[parquet]'") from None
    return pyarrow


def _astropy_table():
    try:
        from astropy.table import Table
    except ImportError:
        raise UserError("--format fits and votable need astropy: pip install 'astrojepa[fits]'") from None
    return Table


def resolve_format(fmt: str | None, out: str | None) -> str:
    """The format to write: ``--format``, else the one ``--out``'s suffix names, else (no file) safetensors.

    A file whose suffix names no format, or names another format than ``--format``, is refused:
    a ``.csv`` file must hold CSV.
    """
    to_file = out is not None and out != "-"
    implied = SUFFIXES.get(Path(out).suffix.lower()) if to_file else None
    if fmt is None:
        if to_file and implied is None:
            raise UserError(f"cannot tell the format of --out {out} from its suffix; give it one of "
                            f"the suffixes {', '.join(SUFFIXES)}, or give --format")
        fmt = implied or "safetensors"
    elif implied is not None and implied != fmt:
        raise UserError(f"--out {out} names a {implied} file but --format is {fmt}; make them agree")
    check_format(fmt)
    return fmt


def write_npy(chunks: Iterable[np.ndarray], n: int, dim: int, stream: BinaryIO) -> None:
    """A version-1.0 ``.npy`` of shape (n, dim) float32: the header, then each chunk's raw rows."""
    np.lib.format.write_array_header_1_0(stream, {"descr": np.dtype("<f4").str, "fortran_order": False,
                                                  "shape": (n, dim)})
    for chunk in chunks:
        stream.write(np.ascontiguousarray(chunk, dtype="<f4").tobytes())


def table_columns(meta: StoreArrays, class_names: list[str], rows: slice, embeddings: np.ndarray) -> dict:
    """Columns of one block of rows: id, split, label, label_name, target_<name>..., the store's catalog
    columns, e0...e{D-1}. ``label_name`` is None for unlabelled objects."""
    labels = meta.labels[rows]
    columns = {
        "id": meta.ids[rows].tolist(),
        "split": meta.split[rows].tolist(),
        "label": labels,
        "label_name": [class_names[v] if 0 <= v < len(class_names) else None for v in labels],
    }
    columns.update({f"target_{name}": values[rows] for name, values in meta.targets.items()})
    columns.update({name: values[rows] for name, values in meta.columns.items() if name not in columns})
    columns.update({f"e{j}": embeddings[:, j] for j in range(embeddings.shape[1])})
    return columns


def _row_blocks(chunks: Iterable[np.ndarray], meta: StoreArrays, class_names: list[str]) -> Iterable[dict]:
    start = 0
    for chunk in chunks:
        yield table_columns(meta, class_names, slice(start, start + len(chunk)), chunk)
        start += len(chunk)


def write_parquet(chunks: Iterable[np.ndarray], meta: StoreArrays, class_names: list[str], stream: BinaryIO,
                  metadata: dict[str, str]) -> None:
    """One parquet row group per chunk; ``metadata`` goes into the file's key-value metadata."""
    pa = _pyarrow()
    writer = None
    for block in _row_blocks(chunks, meta, class_names):
        table = pa.table(block)
        if writer is None:
            schema = table.schema.with_metadata({k: str(v) for k, v in metadata.items()})
            writer = pa.parquet.ParquetWriter(stream, schema)
        writer.write_table(table.cast(writer.schema))
    writer.close()


def _csv_cells(values) -> list[str]:
    """A column as CSV cells: missing values (None, NaN) empty, float32 at its shortest exact form."""
    if isinstance(values, np.ndarray) and values.dtype.kind == "f":
        return ["" if np.isnan(v) else str(v) for v in values]
    return ["" if v is None else str(v) for v in values]


def write_csv(chunks: Iterable[np.ndarray], meta: StoreArrays, class_names: list[str], stream: BinaryIO) -> None:
    """A header row, then one row per object, chunk by chunk (UTF-8, comma-separated)."""
    text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
    writer = csv.writer(text)
    for number, block in enumerate(_row_blocks(chunks, meta, class_names)):
        if number == 0:
            writer.writerow(block)
        writer.writerows(zip(*(_csv_cells(values) for values in block.values())))
    text.flush()
    text.detach()  # leave the caller's stream open


def write_astropy(fmt: str, chunks: Iterable[np.ndarray], meta: StoreArrays, class_names: list[str],
                  stream: BinaryIO, metadata: dict[str, str]) -> None:
    """A FITS binary table or a VOTable (as TOPCAT reads them), ``metadata`` in its header."""
    embeddings = np.concatenate(list(chunks))
    columns = table_columns(meta, class_names, slice(None), embeddings)
    columns["label_name"] = ["" if name is None else name for name in columns["label_name"]]
    table = _astropy_table()(columns, meta={k.upper() if fmt == "fits" else k: str(v) for k, v in metadata.items()})
    table.write(stream, format=fmt)


def safetensors_bytes(chunks: Iterable[np.ndarray], meta: StoreArrays, metadata: dict[str, str]) -> bytes:
    """Embeddings, labels, targets and numeric catalog columns as tensors; ids, splits and text columns as
    JSON in the metadata."""
    import torch
    from safetensors.torch import save

    tensors = {"embeddings": torch.from_numpy(np.concatenate(list(chunks))), "labels": torch.from_numpy(meta.labels)}
    tensors.update({f"targets.{k}": torch.from_numpy(v) for k, v in meta.targets.items()})
    text = {}
    for name, values in meta.columns.items():
        if values.dtype.kind == "f":
            tensors[f"columns.{name}"] = torch.from_numpy(np.ascontiguousarray(values))
        else:
            text[f"columns.{name}"] = json.dumps(values.tolist())
    return save(tensors, {**metadata, **text, "ids": json.dumps(meta.ids.tolist()),
                          "split": json.dumps(meta.split.tolist())})


def write_embeddings(fmt: str, chunks: Iterable[np.ndarray], meta: StoreArrays, class_names: list[str], dim: int,
                     stream: BinaryIO, metadata: dict[str, str]) -> None:
    """Write the embeddings arriving in ``chunks`` to ``stream`` in format ``fmt``."""
    if fmt == "npy":
        write_npy(chunks, len(meta.ids), dim, stream)
    elif fmt == "parquet":
        write_parquet(chunks, meta, class_names, stream, metadata)
    elif fmt == "csv":
        write_csv(chunks, meta, class_names, stream)
    elif fmt in ASTROPY_FORMATS:
        write_astropy(fmt, chunks, meta, class_names, stream, metadata)
    else:
        stream.write(safetensors_bytes(chunks, meta, metadata))
