"""What a run trains on: the store's images of the chosen splits, on the training device, and the
labels its online probe may learn from and be scored on.

Pretraining reads no labels, but probes score the encoder on a labelled store's
``test`` split: by default pretraining leaves that split out (and says so), so a
probe's score is on images the encoder never saw. ``--train-splits all`` uses
every image, as suits a store without labels. The online probe is the one user
of labels: it learns only from images of the ``train`` split and is scored on the
labelled ``test`` split, whatever splits the encoder trains on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from astrojepa_cli.console import stderr
from astrojepa_cli.data import loader, store
from astrojepa_cli.errors import UserError
from astrojepa_cli.train.distributed import launched_as_secondary_rank

PROBE_TRAIN_SPLIT = "train"
PROBE_SCORE_SPLIT = "test"


def default_splits(info: store.StoreInfo) -> tuple[tuple[str, ...], str | None]:
    """Every split the store has, but the test split of a labelled store; and a line saying what was left out."""
    present = tuple(name for name in store.SPLITS if info.splits.get(name))
    if not info.classes or PROBE_SCORE_SPLIT not in present or present == (PROBE_SCORE_SPLIT,):
        return present, None
    kept = tuple(name for name in present if name != PROBE_SCORE_SPLIT)
    return kept, (f"pretraining on {info.name}'s {', '.join(kept)} split{'s' if len(kept) > 1 else ''} "
                  f"({sum(info.splits[name] for name in kept):,} images): its labelled test split "
                  f"({info.splits[PROBE_SCORE_SPLIT]:,} images) is left for probes (--train-splits all uses every image)")


def training_rows(path: Path, info: store.StoreInfo,
                  splits: tuple[str, ...] | None) -> tuple[tuple[str, ...], np.ndarray, str | None]:
    """The splits to train on (``None``: :func:`default_splits`; ``all``: every split the store has), the
    rows of the store at ``path`` in them, and the line that says what the default left out (or None)."""
    note = None
    if splits is None:
        splits, note = default_splits(info)
    elif "all" in splits:
        splits = tuple(name for name in store.SPLITS if info.splits.get(name))
    rows = loader.split_rows(path, splits)
    if len(rows) == 0:
        raise UserError(f"dataset '{info.name}' has no images in split(s) {', '.join(splits)}")
    return splits, rows, note


def say_left_out(note: str | None) -> None:
    """Print the default splits' note once, from the main process, after the recipe has been checked."""
    if note and not launched_as_secondary_rank():
        stderr.print(note, highlight=False, markup=False)


@dataclass
class TrainingData:
    """The training images; the probe's labels for them (-1: not to learn from), ``labelled`` if it has
    any; and the labelled images it is scored on, if any."""

    images: loader.DeviceImages
    probe_labels: torch.Tensor
    labelled: bool
    held_out: loader.DeviceImages | None
    held_out_labels: torch.Tensor | None


def load_training_data(path: Path, info: store.StoreInfo, rows: np.ndarray, stretch: str,
                       device: torch.device) -> TrainingData:
    """The images of ``rows`` of the store at ``path`` on ``device``, with the online probe's labels."""
    images = loader.DeviceImages(path, device, rows, stretch=stretch)
    arrays = store.load(path, with_images=False)
    learnable = np.where(arrays.split[rows] == PROBE_TRAIN_SPLIT, images.labels, -1)
    probe_labels = torch.as_tensor(learnable, device=device)
    labelled = bool(len(info.classes)) and bool((learnable >= 0).any())
    held_out = held_out_labels = None
    if labelled:
        held_rows = loader.split_rows(path, (PROBE_SCORE_SPLIT,))
        held_rows = held_rows[arrays.labels[held_rows] >= 0]
        if len(held_rows):
            held_out = loader.DeviceImages(path, device, held_rows, stretch=stretch)
            held_out_labels = torch.as_tensor(held_out.labels, device=device)
    return TrainingData(images, probe_labels, labelled, held_out, held_out_labels)
