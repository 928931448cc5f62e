"""What a run trains on: the store's images of the chosen splits, on the training device, and the
labels its online probe may learn from and be scored on.

Pretraining reads no labels, so by default it uses every split of the store.
The online probe is the one user of labels: it learns only from images of the
``train`` split and is scored on the labelled ``test`` split, whatever splits
the encoder trains on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from astrojepa_cli.data import loader, store
from astrojepa_cli.errors import UserError

PROBE_TRAIN_SPLIT = "train"
PROBE_SCORE_SPLIT = "test"


def training_rows(path: Path, info: store.StoreInfo,
                  splits: tuple[str, ...] | None) -> tuple[tuple[str, ...], np.ndarray]:
    """The splits to train on (``None``: every split the store has) and the rows of the store at ``path`` in them."""
    splits = splits or tuple(name for name in store.SPLITS if info.splits.get(name))
    rows = loader.split_rows(path, splits)
    if len(rows) == 0:
        raise UserError(f"dataset '{info.name}' has no images in split(s) {', '.join(splits)}")
    return splits, rows


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
