"""The from-scratch few-shot baseline: the same labelled images as the frozen few-shot probe, trained end to end."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from astrojepa_cli.data import store
from astrojepa_cli.errors import UserError
from astrojepa_cli.evaluate.probes import scratch_shots as scratch
from astrojepa_cli.evaluate.probes.label_efficiency import per_class_sample
from astrojepa_cli.evaluate.probes.scratch_training import ScratchTraining
from registry.objective import build_encoder
from tests.conftest import write_blob_store


@pytest.fixture
def blobs(tmp_path):
    path = tmp_path / "blobs.h5"
    write_blob_store(path, n=120)
    return path, store.read_info(path).classes


STEPS = 40


def _fresh(draw: int) -> torch.nn.Module:
    return build_encoder("resnet18", 1, 16, 8)


def test_training_from_scratch_learns_the_labels_and_averages_its_draws(blobs):
    path, classes = blobs
    learned = scratch.scratch_shots(_fresh, path, classes, shots=5, draws=2, training=ScratchTraining(steps=STEPS))
    untrained = scratch.scratch_shots(_fresh, path, classes, shots=5, draws=2, training=ScratchTraining(steps=1))
    # The blobs are easy: a few dozen steps on 15 images separate the three shapes; one step does not.
    assert learned["balanced_accuracy"] >= 0.9 > untrained["balanced_accuracy"]
    assert learned["draws"] == 2 and learned["shots"] == 5 and "balanced_accuracy_std" in learned
    assert sum(map(sum, learned["confusion_matrix"])) == 2 * 40  # both draws scored every test image
    again = scratch.scratch_shots(_fresh, path, classes, shots=5, draws=2, training=ScratchTraining(steps=1))
    assert again["confusion_matrix"] == untrained["confusion_matrix"]  # seeded: the same draws, views and weights


def test_it_trains_on_the_images_the_frozen_few_shot_probe_gets(blobs, monkeypatch):
    path, classes = blobs
    seen = []
    real_train = scratch.train_on_labels

    def recording(model, images, labels, img_size, training, seed):
        seen.append(images.detach().clone())
        return real_train(model, images, labels, img_size, training, seed)

    monkeypatch.setattr(scratch, "train_on_labels", recording)
    scratch.scratch_shots(_fresh, path, classes, shots=3, draws=2, training=ScratchTraining(steps=1))
    meta = store.load(path)
    train_rows = np.flatnonzero((meta.split == "train") & (meta.labels >= 0))
    for draw, images in enumerate(seen):
        rows = train_rows[per_class_sample(meta.labels[train_rows], 3, draw)]
        expected = torch.as_tensor(meta.images[rows], dtype=torch.float32).permute(0, 3, 1, 2)
        # The normalisation is monotone per channel, so equal ordering of pixel sums identifies the images.
        assert images.shape == expected.shape
        assert torch.equal(images.flatten(1).sum(1).argsort(), expected.flatten(1).sum(1).argsort())


def test_bad_settings_are_user_errors(blobs):
    path, classes = blobs
    with pytest.raises(UserError):
        scratch.scratch_shots(_fresh, path, classes, shots=0, draws=1)
    with pytest.raises(UserError):
        scratch.scratch_shots(_fresh, path, classes, shots=2, draws=1, training=ScratchTraining(steps=0))
    with pytest.raises(UserError):
        scratch.scratch_shots(_fresh, path, classes, shots=2, draws=1, tta="d8")
