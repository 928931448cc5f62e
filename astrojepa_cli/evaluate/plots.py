"""Figures (matplotlib, Agg backend): loss curves and image mosaics."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from astrojepa_cli.atomic import atomic_path  # noqa: E402
from astrojepa_cli.errors import UserError  # noqa: E402


def save_figure(figure, path: Path) -> Path:
    """Atomically save ``figure`` (format from the suffix) and close it."""
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format=path.suffix.lstrip("."), dpi=120, bbox_inches="tight")
    plt.close(figure)
    return path


def read_metrics(path: Path) -> list[dict]:
    if not path.exists():
        raise UserError(f"no metrics yet at {path}; has the run taken --log-every steps?")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def loss_curves(rows: list[dict], title: str):
    """Total loss, then each loss term on its own axis, against the step."""
    terms = [k for k in rows[0] if k not in ("step", "epoch", "lr", "images_per_second")]
    figure, axes = plt.subplots(len(terms), 1, figsize=(7, 2.3 * len(terms)), sharex=True, squeeze=False)
    steps = [r["step"] for r in rows]
    for axis, term in zip(axes[:, 0], terms):
        axis.plot(steps, [r[term] for r in rows], label=term)
        axis.set_ylabel(term)
        axis.legend(loc="upper right")
        axis.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("step")
    axes[0, 0].set_title(title)
    return figure


def display_image(image: np.ndarray) -> np.ndarray:
    """H x W x C store pixels -> something imshow draws: greyscale 2-D or RGB scaled to [0, 1]."""
    image = image.astype(np.float32)
    low, high = np.percentile(image, [0.5, 99.5])
    image = np.clip((image - low) / max(high - low, 1e-6), 0, 1)
    return image[..., 0] if image.shape[-1] == 1 else image[..., :3]


def mosaic(images: Sequence[np.ndarray], captions: Sequence[str], title: str):
    """A grid of images with a caption under each."""
    columns = min(5, len(images))
    rows = math.ceil(len(images) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(2.2 * columns, 2.5 * rows), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for axis, image, caption in zip(axes.flat, images, captions):
        axis.imshow(display_image(image), cmap="gray")
        axis.set_title(caption, fontsize=7)
    figure.suptitle(title)
    return figure
