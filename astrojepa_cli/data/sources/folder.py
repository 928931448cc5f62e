"""Image folders: a Zoobot-style catalog CSV, one sub-folder per class, or plain unlabelled images.

JPEG, PNG and the other formats Pillow reads, or FITS (with astropy installed).
A folder with neither a catalog nor class sub-folders is imported unlabelled,
each image's id its file name without the suffix.

Catalog columns (case-sensitive):

* file column (``file``, ``path``, ``filename`` or ``image``; or ``--file-column``): image path relative to the folder;
* ``label`` (optional): an integer class index (-1 for unlabelled) or a class name;
* ``label_name`` (optional, with integer labels): the class names;
* ``split`` (optional): ``train``, ``valid``/``val`` or ``test``;
* id column (``id``, ``objid``, ``object_id``; optional): a unique object id;
* any other column (``ra``, ``dec``, ``gz1_class``, ...) is kept in the store beside the images:
  as numbers when every non-empty value is one (empty cells become NaN), else as text.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from astrojepa_cli.data.sources import ImportOptions
from astrojepa_cli.data.sources.images import FITS_SUFFIXES, Entry, write_images
from astrojepa_cli.data.store import StoreInfo
from astrojepa_cli.errors import DataError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".gif", ".webp"}
FILE_COLUMNS = ("file", "path", "filename", "image")
ID_COLUMNS = ("id", "objid", "object_id")
SPLIT_ALIASES = {"train": "train", "valid": "valid", "val": "valid", "validation": "valid", "test": "test"}
LABEL_COLUMNS = ("label", "label_name", "split")


def _pick(columns: list[str], wanted: tuple[str, ...], override: str | None = None) -> str | None:
    if override:
        if override not in columns:
            raise DataError(f"catalog has no column '{override}' (columns: {', '.join(columns)})")
        return override
    return next((c for c in wanted if c in columns), None)


def read_catalog(folder: Path, catalog: Path, file_column: str | None) -> tuple[list[Entry], list[str]]:
    """Entries and class names from a catalog CSV; every listed file must exist."""
    if not catalog.exists():
        raise DataError(f"catalog not found: {catalog}")
    with open(catalog, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise DataError(f"catalog {catalog} has no rows")
    columns = list(rows[0].keys())
    file_col = _pick(columns, FILE_COLUMNS, file_column)
    if file_col is None:
        raise DataError(f"catalog {catalog} needs a file column ({', '.join(FILE_COLUMNS)}); it has {', '.join(columns)}")
    id_col = _pick(columns, ID_COLUMNS)
    extra = _extra_columns(rows, [c for c in columns if c not in (file_col, id_col, *LABEL_COLUMNS)])
    raw_labels = [row.get("label", "") for row in rows]
    class_names = _class_names(rows, raw_labels)
    entries = []
    for number, row in enumerate(rows, start=2):
        path = folder / row[file_col]
        if not path.exists():
            raise DataError(f"{catalog.name} line {number}: image file not found: {path}")
        split = row.get("split")
        if split is not None:
            if split.strip().lower() not in SPLIT_ALIASES:
                raise DataError(f"{catalog.name} line {number}: unknown split '{split}' (use train, valid or test)")
            split = SPLIT_ALIASES[split.strip().lower()]
        label = _label_index(raw_labels[number - 2], class_names, catalog.name, number)
        object_id = row[id_col] if id_col else Path(row[file_col]).stem
        columns = {name: values[number - 2] for name, values in extra.items()}
        entries.append(Entry(path.name, label, str(object_id), split, path=path, columns=columns))
    return entries, class_names


def _extra_columns(rows: list[dict], names: list[str]) -> dict[str, list]:
    """Each of the catalog's other columns: floats (empty cells NaN) if every non-empty cell is a number, else text."""
    kept = {}
    for name in names:
        cells = [(row[name] or "").strip() for row in rows]
        numbers = [_float(cell) for cell in cells]
        numeric = all(number is not None or cell == "" for cell, number in zip(cells, numbers))
        kept[name.replace("/", "_")] = [math.nan if n is None else n for n in numbers] if numeric else cells
    return kept


def _float(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def _class_names(rows: list[dict], raw_labels: list[str]) -> list[str]:
    present = [value for value in raw_labels if value not in ("", None)]
    if not present:
        return []
    if all(_is_int(v) for v in present):
        indices = sorted({int(v) for v in present if int(v) >= 0})
        names = {int(r["label"]): r.get("label_name") or f"class_{int(r['label'])}" for r in rows if _is_int(r.get("label", ""))}
        return [names.get(i, f"class_{i}") for i in range(max(indices, default=-1) + 1)]
    return sorted(set(present))


def _label_index(value: str, class_names: list[str], catalog: str, number: int) -> int:
    if value in ("", None):
        return -1
    if _is_int(value):
        return int(value)
    if value not in class_names:
        raise DataError(f"{catalog} line {number}: unknown label '{value}'")
    return class_names.index(value)


def _is_int(value: str) -> bool:
    try:
        int(value)
    except (TypeError, ValueError):
        return False
    return True


def _images_in(folder: Path) -> list[Path]:
    return [p for p in sorted(folder.iterdir())
            if p.is_file() and (p.suffix.lower() in IMAGE_SUFFIXES or p.name.lower().endswith(FITS_SUFFIXES))]


def _stem(path: Path) -> str:
    """The file name without its image suffix (``a.fits.gz`` -> ``a``)."""
    name = path.name
    return next((name[: -len(s)] for s in FITS_SUFFIXES if name.lower().endswith(s)), path.stem)


def scan_folder(folder: Path) -> tuple[list[Entry], list[str]]:
    """Entries from a ``folder/<class>/<image>`` tree (class names sorted alphabetically), or, without
    class sub-folders, the folder's own images, unlabelled, with their file names as ids."""
    class_dirs = sorted(p for p in folder.iterdir() if p.is_dir())
    if not class_dirs:
        entries = [Entry(path.name, -1, _stem(path), None, path=path) for path in _images_in(folder)]
        if not entries:
            raise DataError(f"{folder} has no catalog and no class sub-folders, and no images "
                            f"({', '.join(sorted(IMAGE_SUFFIXES) + list(FITS_SUFFIXES))}) of its own")
        return entries, []
    entries = [Entry(path.name, index, f"{class_dir.name}/{_stem(path)}", None, path=path)
               for index, class_dir in enumerate(class_dirs) for path in _images_in(class_dir)]
    if not entries:
        raise DataError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES) + list(FITS_SUFFIXES))}) under {folder}")
    return entries, [p.name for p in class_dirs]


def import_folder(options: ImportOptions, path: Path, catalog: Path | None = None, file_column: str | None = None) -> StoreInfo:
    folder = Path(path)
    if not folder.is_dir():
        raise DataError(f"folder not found: {folder}")
    if catalog is None and (folder / "catalog.csv").exists():
        catalog = folder / "catalog.csv"
    entries, class_names = read_catalog(folder, Path(catalog), file_column) if catalog else scan_folder(folder)
    provenance = {
        "source": "folder",
        "origin": str(folder.resolve()),
        "catalog": str(Path(catalog).resolve()) if catalog else None,
    }
    return write_images(options, entries, class_names, provenance)
