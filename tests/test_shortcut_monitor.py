"""The shortcut monitor: how easily each objective's task is solved, recorded per epoch, warned about once,
and drawn by ``plot``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from astrojepa_cli.data.store_writer import StoreWriter
from astrojepa_cli.evaluate.figures.training import training_monitors
from astrojepa_cli.train.config import PretrainConfig
from astrojepa_cli.train.shortcut_monitor import (
    ntxent_loss_ratio, shortcut_measures, shortcut_warning, variance_ratio,
)
from registry.ijepa import prediction_loss
from registry.losses import lejepa_prediction_loss
from registry.ntxent import nt_xent, nt_xent_logits, positive_retrieval


def _embeddings(n: int, dim: int = 64, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))


def test_retrieval_and_loss_ratio_on_constructed_embeddings():
    views = _embeddings(128)
    matched = positive_retrieval(*nt_xent_logits(views, views + 0.01 * _embeddings(128, seed=1), 0.1))
    assert matched.item() == 1.0
    unrelated = positive_retrieval(*nt_xent_logits(views, _embeddings(128, seed=2), 0.1))
    assert unrelated.item() < 0.1
    # Embeddings that know nothing give the uninformed loss log(2N - 1): ratio 1; matched pairs go towards 0.
    collapsed = torch.ones(128, 64)
    assert ntxent_loss_ratio(nt_xent(collapsed, collapsed, 0.1).item(), 128) == pytest.approx(1.0, abs=1e-4)
    assert ntxent_loss_ratio(nt_xent(views, views, 0.05).item(), 128) < 0.05


def test_variance_ratios_are_0_when_solved_and_near_their_uninformed_value_otherwise():
    z = _embeddings(4096, 16).view(2, 2048, 16)
    same_views = torch.stack([z[0], z[0]])
    assert variance_ratio(lejepa_prediction_loss(same_views, 2).item(), same_views.var(1).mean().item()) == 0.0
    # Two independent views: each is half their difference away from its mean, so pred = var / 2.
    assert variance_ratio(lejepa_prediction_loss(z, 2).item(), z.var(1).mean().item()) == pytest.approx(0.5, abs=0.03)
    targets = _embeddings(2048, 16, seed=3) * 2 + 1
    mean_guess = targets.mean(0).expand_as(targets)
    uninformed = prediction_loss(mean_guess, targets, "l2").item()
    assert variance_ratio(uninformed, targets.var(0).mean().item()) == pytest.approx(1.0, abs=1e-3)
    assert variance_ratio(prediction_loss(targets, targets, "l2").item(), 4.0) == 0.0


def test_measures_follow_the_terms_each_objective_returns():
    assert shortcut_measures({"loss": math.log(63), "retrieval": 0.5, "temperature": 0.1}, 32) == {
        "shortcut_retrieval": 0.5, "shortcut_loss_ratio": pytest.approx(1.0)}
    assert shortcut_measures({"loss": 1.0, "pred": 0.2, "sigreg": 1.0, "projection_var": 0.8}, 32) == {
        "shortcut_invariance_ratio": pytest.approx(0.25)}
    assert shortcut_measures({"loss": 1.0, "pred": 0.3, "target_var": 0.6}, 32) == {
        "shortcut_prediction_ratio": pytest.approx(0.5)}
    assert shortcut_measures({"loss": 1.0, "invariance": 0.1}, 32) == {}


def test_the_warning_comes_once_and_names_the_view_options_left_off():
    config = PretrainConfig(loss="simclr", blur=1.0)
    easy, hard = {"epoch": 1, "shortcut_retrieval": 0.97}, {"epoch": 0, "shortcut_retrieval": 0.4}
    line = shortcut_warning([hard, easy], config)
    assert line.startswith("epoch 1: the simclr task looks solved") and "retrieval 0.97" in line
    assert "--reddening, --band-gain, --drop-bands, --view-noise, --translate" in line and "--blur" not in line
    assert "\n" not in line
    assert shortcut_warning([hard], config) is None
    assert shortcut_warning([easy, {**easy, "epoch": 2}], config) is None
    assert shortcut_warning([], config) is None
    lejepa = shortcut_warning([{"epoch": 0, "shortcut_invariance_ratio": 0.01}], PretrainConfig())
    assert "invariance ratio 0.01" in lejepa
    ijepa = shortcut_warning([{"epoch": 0, "shortcut_prediction_ratio": 0.02}], PretrainConfig(loss="ijepa"))
    assert "masker" in ijepa and "--reddening" not in ijepa


def test_plot_draws_the_shortcut_monitors():
    epochs = [{"epoch": 0, "effective_rank": 3.0, "shortcut_retrieval": 0.5, "shortcut_loss_ratio": 0.9},
              {"epoch": 1, "effective_rank": 4.0, "shortcut_retrieval": 0.97, "shortcut_loss_ratio": 0.3}]
    figure = training_monitors(epochs, "t")
    labels = [axis.get_ylabel() for axis in figure.axes]
    assert labels == ["effective rank (RankMe)", "positive-pair retrieval (top-1)", "NT-Xent / log(2N-1)"]
    assert list(figure.axes[1].lines[0].get_ydata()) == [0.5, 0.97]


def _write_colour_store(path: Path, n: int = 32, size: int = 16) -> None:
    """Identical round sources on the same sky, each in a colour of its own: colour is the only clue."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size, 0:size] - (size - 1) / 2
    blob = np.exp(-(x**2 + y**2) / (2 * 2.5**2))
    colours = rng.uniform(0.1, 1.0, (n, 3))
    images = 20 + 200 * blob[None, :, :, None] * colours[:, None, None, :]
    images = np.clip(images + rng.normal(0, 2, images.shape), 0, 255).astype(np.uint8)
    with StoreWriter(path, name="colours", image_shape=(size, size, 3), dtype=np.uint8, class_names=["a", "b"],
                     provenance={"source": "test"}) as writer:
        writer.append(images, [i % 2 for i in range(n)], [f"obj{i}" for i in range(n)], ["train"] * n)
        writer.finish()


@pytest.fixture
def colour_store(home) -> str:
    _write_colour_store(home / "data" / "colours.h5")
    return "colours"


SIMCLR = ("--loss", "simclr", "--arch", "vit-t", "--img-size", "16", "--patch-size", "4", "--batch-size", "32",
          "--global-scale", "1.0", "1.0", "--epochs", "1", "--quiet")


def _epochs(result) -> list[dict]:
    run_dir = Path(json.loads(result.stdout)["run_dir"])
    return json.loads((run_dir / "manifest.json").read_text())["epochs"]


def test_pretrain_warns_when_colour_alone_solves_the_task(cli, colour_store):
    plain = cli("pretrain", "--data", colour_store, *SIMCLR, "--json")
    epochs = _epochs(plain)
    assert epochs[0]["shortcut_retrieval"] >= 0.95 and 0 < epochs[0]["shortcut_loss_ratio"] < 1
    warnings = [line for line in plain.stderr.splitlines() if "task looks solved" in line]
    assert len(warnings) == 1 and warnings[0].startswith("warning: epoch 0: the simclr task looks solved")
    # Views whose colours no longer match: the same data is no longer solved, and nothing is said.
    recoloured = cli("pretrain", "--data", colour_store, *SIMCLR, "--band-gain", "1.0", "--drop-bands", "0.5", "--json")
    assert _epochs(recoloured)[0]["shortcut_retrieval"] < 0.5
    assert "task looks solved" not in recoloured.stderr
