"""Hugging Face image datasets (``hf:<repo_id>``) through the optional ``datasets`` library.

``<repo_id>`` is a Hub dataset (``user/name``, read through the local Hugging
Face cache, so ``HF_HUB_OFFLINE=1`` works once it is cached), a local dataset
folder (parquet, image-folder or ``save_to_disk`` layout) or parquet files
(``data/*.parquet``). Without ``--split`` every split is imported and
train/validation/test become the store's split; with ``--split`` only that
split is imported and a stratified split is made.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import IO, Any

import numpy as np

from astrojepa_cli.data.sources import ImportOptions
from astrojepa_cli.data.sources.arrays import ArrayDataset, write_arrays
from astrojepa_cli.data.sources.images import Entry, write_images
from astrojepa_cli.data.store import StoreInfo
from astrojepa_cli.errors import DataError

SPLIT_NAMES = {"train": "train", "validation": "valid", "valid": "valid", "val": "valid", "test": "test"}
IMAGE_COLUMNS = ("image", "img", "images")
LABEL_COLUMNS = ("label", "labels")


def _datasets_library() -> Any:
    try:
        import datasets
    except ImportError:
        raise DataError("hf: sources need the 'datasets' library: pip install 'astrojepa[hf]' "
                        "(or: pip install datasets pyarrow)") from None
    datasets.disable_progress_bars()  # stderr carries our own messages only
    datasets.logging.set_verbosity_error()
    return datasets


def _load_splits(repo_id: str, split: str | None) -> dict[str, Any]:
    """{split name: Dataset} from the Hub cache, a local folder or parquet files."""
    datasets = _datasets_library()
    path = Path(repo_id).expanduser()
    try:
        if path.is_file() or "*" in repo_id:
            loaded = datasets.load_dataset("parquet", data_files=str(path), split=split)
        elif path.is_dir() and ((path / "dataset_dict.json").exists() or (path / "state.json").exists()):
            loaded = datasets.load_from_disk(str(path))
            loaded = loaded[split] if split and isinstance(loaded, datasets.DatasetDict) else loaded
        else:
            loaded = datasets.load_dataset(str(path) if path.is_dir() else repo_id, split=split)
    except KeyError:
        raise DataError(f"hf:{repo_id} has no split '{split}'") from None
    except Exception as exc:  # the library's many error types all mean "cannot read this dataset"
        first_line = (str(exc).splitlines() or [exc.__class__.__name__])[0]
        raise DataError(f"cannot load Hugging Face dataset '{repo_id}': {first_line}") from None
    if isinstance(loaded, datasets.DatasetDict):
        return dict(loaded)
    return {split or "train": loaded}


def _pick_column(features: dict, given: str | None, feature_type: type, names: tuple[str, ...], what: str) -> str | None:
    if given is not None:
        if given not in features:
            raise DataError(f"no {what} column '{given}' (columns: {', '.join(features)})")
        return given
    typed = next((name for name, feature in features.items() if isinstance(feature, feature_type)), None)
    return typed or next((name for name in names if name in features), None)


def import_hugging_face(options: ImportOptions, repo_id: str, image_column: str | None = None,
                        label_column: str | None = None, split: str | None = None) -> StoreInfo:
    """Import one split (``split``) or all splits of a Hugging Face image dataset."""
    datasets = _datasets_library()
    splits = _load_splits(repo_id, split)
    official = split is None and len(splits) > 1
    if official:
        unknown = sorted(set(splits) - set(SPLIT_NAMES))
        if unknown:
            raise DataError(f"hf:{repo_id} has splits {', '.join(sorted(splits))}; {', '.join(unknown)} cannot map "
                            f"to train/valid/test, so choose one with --split")
    parts = list(splits.items())
    features = parts[0][1].features
    image_col = _pick_column(features, image_column, datasets.Image, IMAGE_COLUMNS, "image")
    if image_col is None:
        raise DataError(f"cannot tell which column holds the images (columns: {', '.join(features)}); pass --image-column")
    label_col = _pick_column(features, label_column, datasets.ClassLabel, LABEL_COLUMNS, "label")
    merged = datasets.concatenate_datasets([part for _, part in parts]) if len(parts) > 1 else parts[0][1]
    names = [name for name, part in parts for _ in range(len(part))]
    labels, class_names = _labels(merged, label_col, features)
    ids = [f"{name}-{i}" for name, part in parts for i in range(len(part))]
    split_of_row = np.array([SPLIT_NAMES[name] for name in names]) if official else None
    provenance = {"source": f"hf:{repo_id}", "origin": repo_id, "splits": sorted(splits),
                  "columns": {"image": image_col, "label": label_col},
                  "split": "the dataset's own splits" if official else None}
    if isinstance(features[image_col], datasets.Image):
        encoded = merged.cast_column(image_col, datasets.Image(decode=False)).select_columns([image_col])
        entries = [Entry(object_id, int(label), object_id, None if split_of_row is None else split_of_row[i],
                         opener=_Opener(encoded, image_col, i))
                   for i, (object_id, label) in enumerate(zip(ids, labels))]
        return write_images(options, entries, class_names, provenance)
    data = ArrayDataset(images=_ArrayColumn(merged, image_col), labels=labels, class_names=class_names, ids=ids,
                        split=split_of_row)
    return write_arrays(options, data, provenance, f"hf:{repo_id}")


def _labels(dataset: Any, label_col: str | None, features: dict) -> tuple[np.ndarray, list[str]]:
    """Integer labels (-1 unlabelled) and class names: ClassLabel names, sorted strings, or none (integers)."""
    if label_col is None:
        return np.full(len(dataset), -1, dtype=np.int64), []
    values = list(dataset.select_columns([label_col])[label_col])
    names = getattr(features[label_col], "names", None)
    if names:
        return np.asarray(values, dtype=np.int64), list(names)
    if all(isinstance(v, str) for v in values):
        classes = sorted(set(values))
        return np.asarray([classes.index(v) for v in values], dtype=np.int64), classes
    try:
        return np.asarray(values, dtype=np.int64), []
    except (TypeError, ValueError):
        raise DataError(f"label column '{label_col}' must hold class indices or class names") from None


class _Opener:
    """The encoded bytes of one row's image, fetched only when the image is decoded."""

    def __init__(self, dataset: Any, column: str, row: int) -> None:
        self.dataset, self.column, self.row = dataset, column, row

    def __call__(self) -> IO[bytes] | str:
        value = self.dataset[self.row][self.column]
        if value.get("bytes") is not None:
            return io.BytesIO(value["bytes"])
        return value["path"]


class _ArrayColumn:
    """A column of array-valued images, sliced as N x H x W [x C] numpy arrays."""

    def __init__(self, dataset: Any, column: str) -> None:
        self.dataset = dataset.select_columns([column]).with_format("numpy")
        self.column = column
        first = np.asarray(self.dataset[0][column])
        self.shape = (len(dataset), *first.shape)
        self.dtype = first.dtype

    def __getitem__(self, rows: slice) -> np.ndarray:
        return np.asarray(self.dataset[rows][self.column])
