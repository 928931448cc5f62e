"""Small input files in each source's exact layout, written by the tests themselves."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import h5py
import numpy as np
from PIL import Image


def galaxy10_file(path: Path, n: int = 30, size: int = 24, decals: bool = False, seed: int = 0) -> dict:
    """A Galaxy10 file: ``images`` N x size x size x 3 uint8 and ``ans`` uint8 (DECaLS also ra/dec/redshift/pxscale)."""
    rng = np.random.default_rng(seed)
    arrays = {"images": rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8),
              "ans": (np.arange(n) % 10).astype(np.uint8)}
    if decals:
        arrays.update(ra=rng.uniform(0, 360, n), dec=rng.uniform(-10, 60, n),
                      redshift=rng.uniform(0, 0.2, n).astype(np.float32), pxscale=np.full(n, 0.262))
    with h5py.File(path, "w") as handle:
        for key, value in arrays.items():
            handle[key] = value
    return arrays


def jets_file(path: Path, n: int = 20, size: int = 25, channels: int = 3, seed: int = 0) -> dict:
    """An ML4SCI quark/gluon file: ``X_jets`` float32, ``y`` (0.0/1.0), ``m0`` and ``pt``."""
    rng = np.random.default_rng(seed)
    deposits = rng.exponential(1.0, (n, size, size, channels)).astype(np.float32)
    deposits[rng.random(deposits.shape) < 0.8] = 0.0  # jet images are mostly empty
    arrays = {"X_jets": deposits, "y": (np.arange(n) % 2).astype(np.float64),
              "m0": rng.uniform(5, 30, n), "pt": rng.uniform(70, 300, n)}
    with h5py.File(path, "w") as handle:
        for key, value in arrays.items():
            handle[key] = value
    return arrays


def png(path: Path, size: int | tuple[int, int], seed: int = 0, mode: str = "RGB") -> np.ndarray:
    """Write a random PNG (lossless, so its pixels can be compared exactly) and return them."""
    width, height = (size, size) if isinstance(size, int) else size
    shape = (height, width, 3) if mode == "RGB" else (height, width)
    pixels = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels, mode).save(path)
    return pixels


def class_tree(folder: Path, classes: tuple[str, ...] = ("spiral", "elliptical"), per_class: int = 6,
               size: int = 20) -> None:
    """``folder/<class>/<n>.png``."""
    for index, name in enumerate(classes):
        for i in range(per_class):
            png(folder / name / f"{i}.png", size, seed=100 * index + i)


def catalog_folder(folder: Path, n: int, size: int, columns: str, row: Callable[[int], str]) -> None:
    """``folder/g<i>.png``, ``n`` random greyscale cutouts (seed ``i``), and ``folder/catalog.csv`` with the
    header ``file,<columns>`` and, per image, ``g<i>.png,<row(i)>``."""
    lines = [f"file,{columns}"]
    for i in range(n):
        png(folder / f"g{i}.png", size, seed=i, mode="L")
        lines.append(f"g{i}.png,{row(i)}")
    (folder / "catalog.csv").write_text("\n".join(lines) + "\n")
