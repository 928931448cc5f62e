"""Figure plumbing (matplotlib, Agg backend) and image figures: saving, mosaics, anomaly and similarity panels."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from astrojepa_cli.atomic import atomic_path  # noqa: E402

DPI = 110


def save_figure(figure, path: Path, pdf: bool = False) -> list[Path]:
    """Atomically save ``figure`` as ``path`` (PNG) and, with ``pdf``, beside it as PDF; then close it."""
    targets = [path, path.with_suffix(".pdf")] if pdf else [path]
    for target in targets:
        with atomic_path(target) as tmp:
            figure.savefig(tmp, format=target.suffix.lstrip("."), dpi=DPI, bbox_inches="tight")
    plt.close(figure)
    return targets


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


def anomaly_mosaic(records: Sequence[dict], images: np.ndarray, title: str):
    """The top-ranked objects (``records`` from the ranked list, ``images`` in the same order), scores in captions."""
    captions = [f"#{r['rank']} {r['id']}\nscore {r['score']:.3g} {r['label']}" for r in records]
    return mosaic(images, captions, title)


def similarity_mosaic(query_caption: str, query_image: np.ndarray, neighbours: Sequence[dict], images: np.ndarray,
                      title: str):
    """The query first, then its nearest neighbours with their cosine similarity."""
    captions = [query_caption] + [f"#{n['rank']} {n['id']}\ncos {n['similarity']:.3f} {n['label']}"
                                  for n in neighbours]
    return mosaic([query_image, *images], captions, title)
