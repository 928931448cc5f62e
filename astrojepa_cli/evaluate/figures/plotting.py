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
from astrojepa_cli.evaluate.figures.labels import class_label  # noqa: E402

DPI = 110


def save_figure(figure, path: Path, pdf: bool = False) -> list[Path]:
    """Atomically save ``figure`` as ``path`` (PNG) and, with ``pdf``, beside it as PDF; then close it."""
    targets = [path, path.with_suffix(".pdf")] if pdf else [path]
    for target in targets:
        with atomic_path(target) as tmp:
            figure.savefig(tmp, format=target.suffix.lstrip("."), dpi=DPI, bbox_inches="tight")
    plt.close(figure)
    return targets


def unused_path(path: Path) -> Path:
    """``path``, or ``NAME-2.png``, ``NAME-3.png``, ... beside it: the first name no earlier figure has taken."""
    candidate, number = path, 1
    while candidate.exists():
        number += 1
        candidate = path.with_name(f"{path.stem}-{number}{path.suffix}")
    return candidate


def display_image(image: np.ndarray) -> np.ndarray:
    """H x W x C store pixels -> something imshow draws: greyscale 2-D or RGB scaled to [0, 1]."""
    image = image.astype(np.float32)
    low, high = np.percentile(image, [0.5, 99.5])
    image = np.clip((image - low) / max(high - low, 1e-6), 0, 1)
    return image[..., 0] if image.shape[-1] == 1 else image[..., :3]


def sky_positions(columns: dict[str, np.ndarray], rows: Sequence[int]) -> list[str] | None:
    """"RA 150.11860° Dec +2.20580°" for each of ``rows``, when the store kept ``ra`` and ``dec`` (degrees)."""
    by_name = {name.lower(): values for name, values in columns.items()}
    if "ra" not in by_name or "dec" not in by_name or by_name["ra"].dtype.kind != "f":
        return None
    return [f"RA {by_name['ra'][row]:.5f}° Dec {by_name['dec'][row]:+.5f}°" for row in rows]


def mosaic(images: Sequence[np.ndarray], captions: Sequence[str], title: str, note: str = ""):
    """A grid of images with a caption under each; ``note`` (what the numbers mean) along the bottom."""
    columns = min(5, len(images))
    rows = math.ceil(len(images) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(2.4 * columns, 2.5 * rows + 0.5), squeeze=False,
                                layout="constrained")
    for axis in axes.flat:
        axis.axis("off")
    for axis, image, caption in zip(axes.flat, images, captions):
        axis.imshow(display_image(image), cmap="gray")
        axis.set_title(caption, fontsize=7)
    figure.suptitle(title)
    if note:
        figure.supxlabel(note, fontsize=8)
    return figure


def _with_sky(captions: list[str], sky: Sequence[str] | None) -> list[str]:
    return captions if sky is None else [f"{caption}\n{position}" for caption, position in zip(captions, sky)]


def anomaly_mosaic(records: Sequence[dict], images: np.ndarray, title: str, note: str = "",
                   sky: Sequence[str] | None = None):
    """The top-ranked objects (``records`` from the ranked list, ``images`` in the same order), scores in
    captions, ``note`` saying what the score measures, ``sky`` positions under the captions if given."""
    captions = [f"#{r['rank']} {r['id']}\nscore {r['score']:.3g} {class_label(r['label'])}" for r in records]
    return mosaic(images, _with_sky(captions, sky), title, note)


SIMILARITY_NOTE = "cos: cosine similarity of each embedding to the query's (1 = same direction, 0 = unrelated)"


def similarity_mosaic(query_caption: str, query_image: np.ndarray, neighbours: Sequence[dict], images: np.ndarray,
                      title: str, sky: Sequence[str] | None = None):
    """The query first, then its nearest neighbours with their cosine similarity (``sky``: query's first)."""
    captions = [query_caption] + [f"#{n['rank']} {n['id']}\ncos {n['similarity']:.3f} {class_label(n['label'])}"
                                  for n in neighbours]
    return mosaic([query_image, *images], _with_sky(captions, sky), title, SIMILARITY_NOTE)
