"""The probe protocol: standardised kNN, the C grid and its convergence flag, and the random-weights baseline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from astrojepa_cli.data import loader, store
from astrojepa_cli.evaluate.features import Features
from astrojepa_cli.evaluate.probes import linear
from astrojepa_cli.evaluate.probes.context import convergence_warning
from astrojepa_cli.evaluate.probes.knn import knn_classifier, knn_probe
from astrojepa_cli.evaluate.probes.random_baseline import (
    DEFAULT, NO_ZERO_INIT, random_networks, random_weights_result, stronger,
)
from registry.encoders import Encoder
from registry.views import centre_view
from tests.conftest import write_blob_store

CLASSES = ["a", "b", "c"]


def _features(x: np.ndarray, y: np.ndarray, n_train: int) -> Features:
    split = np.array(["train"] * n_train + ["test"] * (len(y) - n_train))
    return Features(x.astype(np.float32), y, np.array([f"o{i}" for i in range(len(y))]), split, {})


def test_knn_standardises_a_feature_of_huge_offset_and_scale():
    rng = np.random.default_rng(0)
    y = np.arange(300) % 3
    informative = rng.normal(0, 0.3, (300, 2)) + np.array([[0, 0], [1, 0], [0, 1]])[y]
    # Uninformative features, one of huge scale and one of huge offset: raw cosine similarity sees only them.
    uninformative = np.hstack([rng.normal(0, 100, (300, 1)), rng.normal(1000, 1, (300, 1))])
    features = _features(np.hstack([informative, uninformative]), y, 200)
    standardised = knn_probe(features, CLASSES, k=10)
    raw = knn_classifier(10)[-1].fit(features.embeddings[:200], y[:200]).predict(features.embeddings[200:])
    raw_accuracy = np.mean([np.mean(raw[y[200:] == c] == c) for c in range(3)])
    assert standardised["balanced_accuracy"] > 0.8 and raw_accuracy < 0.5
    assert len(standardised["test_predictions"]) == 100


def test_c_grid_reaches_strong_regularisation_and_records_convergence():
    assert min(linear.C_GRID) == pytest.approx(1e-4) and max(linear.C_GRID) == pytest.approx(1e2)
    # As many features as train images, the class signal spread thinly over all of them: the fits that
    # interpolate the train images do worse than the strongly shrunk one (close to the class means).
    rng = np.random.default_rng(2)
    y = np.arange(120) % 3
    centres = 0.25 * rng.normal(0, 1, (3, 60))
    x = rng.normal(0, 1, (120, 60)) + centres[y]
    result = linear.linear_probe(_features(x, y, 90), CLASSES)
    assert result["C"] < 0.01 and result["converged"] is True
    assert len(result["test_predictions"]) == 30


def test_a_fit_stopped_at_its_iteration_limit_is_flagged(monkeypatch):
    rng = np.random.default_rng(0)
    y = np.arange(90) % 3
    x = rng.normal(0, 1, (90, 20)) + rng.normal(0, 1, (3, 20))[y]
    monkeypatch.setattr(linear, "MAX_ITER", 2)
    result = linear.linear_probe(_features(x, y, 60), CLASSES)
    assert result["converged"] is False and result["max_iter"] == 2
    assert "did not converge in 2 iterations" in convergence_warning("blobs/linear", result)
    assert convergence_warning("blobs/linear", {**result, "converged": True}) is None


@pytest.fixture(scope="module")
def blob_store_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("baseline") / "blobs.h5"
    write_blob_store(path)
    return path


def _timm_default_resnet() -> Encoder:
    """A small ResNet as timm initialises it by default: the last norm of every residual branch zeroed."""
    encoder = Encoder("resnet18_small_w16", in_chans=1)
    encoder.input_size = 16
    return encoder


def test_random_baseline_revives_residual_branches_and_reestimates_batchnorm(blob_store_path):
    networks = random_networks(_timm_default_resnet, 0, blob_store_path, "cpu")
    assert set(networks) == {DEFAULT, NO_ZERO_INIT}
    default, revived = networks[DEFAULT].backbone, networks[NO_ZERO_INIT].backbone
    torch.testing.assert_close(default.conv1.weight, revived.conv1.weight)  # one seed, the same weights
    assert not default.layer1[0].bn2.weight.any() and (revived.layer1[0].bn2.weight == 1).all()

    # The stem's statistics are those of the train images (one chunk: exactly its mean and variance).
    meta = store.load(blob_store_path)
    train = torch.as_tensor(meta.images[meta.split == "train"])
    pixels = centre_view(loader.Normaliser.for_store(blob_store_path, torch.device("cpu"))(
        loader.channels_first(train.numpy(), torch.device("cpu"))), 16)
    with torch.no_grad():
        stem = default.conv1(pixels)
    torch.testing.assert_close(default.bn1.running_mean, stem.mean(dim=(0, 2, 3)), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(default.bn1.running_var, stem.var(dim=(0, 2, 3)), rtol=1e-3, atol=1e-5)
    assert default.bn1.momentum == 0.1 and not default.training

    # At initialisation a zeroed branch outputs exactly 0; the revived one does not.
    branch_outputs = {}
    for name, backbone in (("default", default), ("revived", revived)):
        backbone.layer1[0].bn2.register_forward_hook(lambda m, i, out, name=name: branch_outputs.update({name: out.clone()}))
        with torch.no_grad():
            backbone(pixels[:8])
    assert not branch_outputs["default"].any() and branch_outputs["revived"].abs().mean() > 0.1


def test_random_baseline_keeps_the_stronger_network_and_both_scores(blob_store_path):
    vit = random_networks(lambda: Encoder("vit_tiny_patch16_224", img_size=16, patch_size=4, in_chans=1, depth=1,
                                          class_token=False, global_pool="avg"), 0, blob_store_path, "cpu")
    assert list(vit) == [DEFAULT]  # nothing zeroed, no BatchNorm: one network, as built
    scores = iter([0.4, 0.6])
    result = random_weights_result(_timm_default_resnet, 0, blob_store_path, "cpu", "none",
                                   lambda network: {"balanced_accuracy": next(scores)})
    assert result == {"balanced_accuracy": 0.6, "random_init": NO_ZERO_INIT,
                      "random_inits": {DEFAULT: 0.4, NO_ZERO_INIT: 0.6}}
    assert stronger({DEFAULT: {"rmse": 2.0}, NO_ZERO_INIT: {"rmse": 3.0}})["random_init"] == DEFAULT
