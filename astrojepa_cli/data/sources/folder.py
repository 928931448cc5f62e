"""Image folders: a Zoobot-style catalog CSV, or one sub-folder per class.

Catalog columns (case-sensitive):

* file column (``file``, ``path``, ``filename`` or ``image``; or ``--file-column``): image path relative to the folder;
* ``label`` (optional): an integer class index (-1 for unlabelled) or a class name;
* ``label_name`` (optional, with integer labels): the class names;
* ``split`` (optional): ``train``, ``valid``/``val`` or ``test``;
* id column (``id``, ``objid``, ``object_id``; optional): a unique object id.
"""

from __future__ import annotations

import csv
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from astrojepa_cli.data.preprocess import check_crop, crop_resize_pil
from astrojepa_cli.data.sources import ImportOptions
from astrojepa_cli.data.store import StoreInfo, StoreWriter
from astrojepa_cli.errors import DataError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".gif", ".webp"}
FILE_COLUMNS = ("file", "path", "filename", "image")
ID_COLUMNS = ("id", "objid", "object_id")
SPLIT_ALIASES = {"train": "train", "valid": "valid", "val": "valid", "validation": "valid", "test": "test"}
CHUNK = 256


@dataclass
class Entry:
    path: Path
    label: int
    object_id: str
    split: str | None


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
        entries.append(Entry(path, label, str(object_id), split))
    return entries, class_names


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


def scan_class_folders(folder: Path) -> tuple[list[Entry], list[str]]:
    """Entries from a ``folder/<class>/<image>`` tree, class names sorted alphabetically."""
    class_dirs = sorted(p for p in folder.iterdir() if p.is_dir())
    if not class_dirs:
        raise DataError(f"{folder} has no catalog and no class sub-folders; pass --catalog CSV")
    entries = []
    for index, class_dir in enumerate(class_dirs):
        for path in sorted(class_dir.iterdir()):
            if path.suffix.lower() in IMAGE_SUFFIXES:
                entries.append(Entry(path, index, f"{class_dir.name}/{path.stem}", None))
    if not entries:
        raise DataError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {folder}")
    return entries, [p.name for p in class_dirs]


def _decode(entry: Entry, options: ImportOptions, mode: str) -> tuple[np.ndarray | None, tuple[int, int] | None, str | None]:
    try:
        with Image.open(entry.path) as image:
            image.load()
            size = image.size
            return crop_resize_pil(image.convert(mode), options.crop, options.size), size, None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        return None, None, f"{entry.path.name}: {exc.__class__.__name__}: {exc}"


def _image_mode(entries: list[Entry]) -> str:
    """'L' for greyscale collections, else 'RGB' (judged from the first readable image)."""
    for entry in entries[:20]:
        try:
            with Image.open(entry.path) as image:
                return "L" if image.mode in ("L", "I", "I;16", "F", "1") else "RGB"
        except (UnidentifiedImageError, OSError):
            continue
    return "RGB"


def import_folder(options: ImportOptions, path: Path, catalog: Path | None = None, file_column: str | None = None) -> StoreInfo:
    check_crop(options.crop)
    folder = Path(path)
    if not folder.is_dir():
        raise DataError(f"folder not found: {folder}")
    if catalog is None and (folder / "catalog.csv").exists():
        catalog = folder / "catalog.csv"
    entries, class_names = read_catalog(folder, Path(catalog), file_column) if catalog else scan_class_folders(folder)
    mode = _image_mode(entries)
    channels = 1 if mode == "L" else 3
    has_split = any(e.split for e in entries)
    provenance = {
        "source": "folder",
        "origin": str(folder.resolve()),
        "catalog": str(Path(catalog).resolve()) if catalog else None,
        "preprocessing": {"crop": options.crop, "size": options.size, "mode": mode},
    }
    skipped: list[str] = []
    sizes: set[tuple[int, int]] = set()
    with StoreWriter(options.store, name=options.name, image_shape=(options.size, options.size, channels),
                     dtype=np.uint8, class_names=class_names, provenance=provenance) as writer:
        with ThreadPoolExecutor(max_workers=4) as pool:
            for start in range(0, len(entries), CHUNK):
                batch = entries[start : start + CHUNK]
                decoded = list(pool.map(lambda e: _decode(e, options, mode), batch))
                kept = [(e, image) for e, (image, _, _) in zip(batch, decoded) if image is not None]
                for _, size, problem in decoded:
                    if problem:
                        if options.strict:
                            raise DataError(f"cannot decode image {problem}")
                        skipped.append(problem)
                    else:
                        sizes.add(size)
                if kept:
                    writer.append(
                        np.stack([image for _, image in kept]),
                        [e.label for e, _ in kept],
                        [e.object_id for e, _ in kept],
                        [e.split or "train" for e, _ in kept] if has_split else None,
                    )
        if skipped:
            options.warnings.append(f"skipped {len(skipped)} undecodable image(s): {'; '.join(skipped[:5])}")
        if len(sizes) > 1:
            options.warnings.append(f"images had {len(sizes)} different sizes; all were cropped and resized to {options.size}px")
        writer.provenance["skipped"] = skipped
        return writer.finish(options.seed)
