"""Supervised training from scratch on a few labels per class: what a pretrained encoder's few-shot probe must beat.

A fresh encoder of the run's architecture and a linear head are trained end to
end, with cross-entropy and AdamW, on exactly the labelled images that the
frozen few-shot probe gets (:func:`label_efficiency.per_class_sample`, the same
draw seeds, over the labelled train split in store order). To be fair to the
baseline it gets augmentations (random resized crops, flips and quarter turns,
:func:`registry.views.random_views`), a cosine learning-rate decay, and the same
test-time D4 averaging as the frozen rows (the logits of the 8 rotations and
flips are averaged). With ten images per class there is nothing to hold out for
early stopping, so training runs a fixed number of full-batch steps.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from astrojepa_cli.data import loader, store
from astrojepa_cli.errors import UserError
from astrojepa_cli.evaluate.features import check_tta, encoder_img_size
from astrojepa_cli.evaluate.probes.finetune import EncoderWithHead
from astrojepa_cli.evaluate.probes.label_efficiency import per_class_sample
from astrojepa_cli.evaluate.probes.linear import TEST_SPLIT, classification_metrics
from astrojepa_cli.evaluate.probes.scratch_training import ScratchTraining
from astrojepa_cli.evaluate.probes.seeds import summarise
from registry.views import ViewSpec, centre_view, dihedral_views, random_views

EVAL_CHUNK = 256


def train_on_labels(model: EncoderWithHead, images: torch.Tensor, labels: torch.Tensor, img_size: int,
                    training: ScratchTraining, seed: int) -> EncoderWithHead:
    """Minimise cross-entropy of ``model`` on augmented views of ``images`` for ``training.steps`` full-batch steps."""
    generator = torch.Generator(device=images.device).manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=training.lr, weight_decay=training.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=training.steps)
    spec = ViewSpec(count=1, size=img_size, scale=training.crop_scale)
    model.train()
    for _ in range(training.steps):
        loss = F.cross_entropy(model(random_views(images, spec, generator)), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    return model.eval()


@torch.no_grad()
def predict(model: nn.Module, data: loader.DeviceImages, img_size: int, tta: str) -> np.ndarray:
    """Class predictions for every image of ``data``: the argmax of the logits (averaged over D4 with ``tta="d4"``)."""
    predicted = []
    for chunk in torch.arange(len(data), device=data.device).split(EVAL_CHUNK):
        pixels = centre_view(data.batch(chunk), img_size)
        copies = dihedral_views(pixels) if tta == "d4" else [pixels]
        predicted.append(torch.stack([model(copy) for copy in copies]).mean(0).argmax(1).cpu())
    return torch.cat(predicted).numpy()


def scratch_shots(build_encoder: Callable[[int], nn.Module], store_path: Path, class_names: list[str], shots: int,
                  draws: int, device: torch.device | str = "cpu", stretch: str = "none", tta: str = "d4",
                  training: ScratchTraining = ScratchTraining()) -> dict:
    """Balanced accuracy, accuracy and macro-F1 (mean ± std over ``draws``) of an encoder from
    ``build_encoder(draw)`` trained from scratch on ``shots`` labelled train images per class."""
    check_tta(tta)
    training.validate()
    if shots < 1 or draws < 1:
        raise UserError("the from-scratch baseline needs at least one shot and one draw")
    device = torch.device(device)
    meta = store.load(store_path, with_images=False)
    train_rows = np.flatnonzero((meta.split == "train") & (meta.labels >= 0))
    test_rows = np.flatnonzero((meta.split == TEST_SPLIT) & (meta.labels >= 0))
    if len(test_rows) == 0:
        raise UserError(f"the dataset has no labelled '{TEST_SPLIT}' images to score the from-scratch baseline on")
    test = loader.DeviceImages(store_path, device, test_rows, stretch)
    results = []
    for draw in range(draws):
        picked = train_rows[per_class_sample(meta.labels[train_rows], shots, draw)]
        train = loader.DeviceImages(store_path, device, picked, stretch)
        torch.manual_seed(draw)
        encoder = build_encoder(draw)
        img_size = encoder_img_size(encoder, train.pixels.shape[-1])
        model = EncoderWithHead(encoder, len(class_names)).to(device)
        images = train.batch(torch.arange(len(train), device=device))
        labels = torch.as_tensor(meta.labels[picked], dtype=torch.long, device=device)
        train_on_labels(model, images, labels, img_size, training, seed=draw)
        results.append(classification_metrics(meta.labels[test_rows], predict(model, test, img_size, tta), class_names))
    return {**summarise(results), "shots": shots, "draws": draws, "tta": tta, "training": asdict(training)}
