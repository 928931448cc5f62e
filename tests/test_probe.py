"""``probe``: linear over seeds, kNN, few-shot and label-fraction curves, fine-tuning, regression targets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from astrojepa_cli.data.store_writer import StoreWriter
from astrojepa_cli.evaluate.probes.finetune import FinetuneConfig, compare_with_scratch, task_for
from astrojepa_cli.evaluate.probes.knn import knn_classifier
from registry.encoders import Encoder
from tests.conftest import TINY_PRETRAIN, Cli, write_blob_store

FAST = ("--epochs", "1", "--max-steps", "2", *TINY_PRETRAIN, "--local-views", "0")


def write_target_store(path: Path, n: int = 72, size: int = 16) -> None:
    """Round blobs whose width is the regression target ``m0`` (a stand-in for jet mass); a few targets NaN."""
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:size, 0:size] - (size - 1) / 2
    widths = rng.uniform(1.0, 4.0, n)
    images = [np.clip(200 * np.exp(-(x**2 + y**2) / (2 * w**2)) + rng.normal(10, 3, (size, size)), 0, 255)
              for w in widths]
    targets = widths.astype(np.float32)
    targets[[3, 40]] = np.nan
    split = ["train"] * 48 + ["valid"] * 8 + ["test"] * 16
    with StoreWriter(path, name="widths", image_shape=(size, size, 1), dtype=np.uint8, class_names=[],
                     provenance={"source": "test"}, target_names=["m0"]) as writer:
        writer.append(np.stack(images)[..., None].astype(np.uint8), [-1] * n, [f"w{i}" for i in range(n)], split,
                      targets={"m0": targets})
        writer.finish()


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Cli, Path, str]:
    """One tiny run on the blob store (two steps), shared by the module's tests."""
    root = tmp_path_factory.mktemp("probe-home")
    write_blob_store(root / "data" / "blobs.h5")
    write_target_store(root / "data" / "widths.h5")
    cli = Cli()
    run = cli.json("pretrain", "--data", "blobs", *FAST, "--root", root)["run_id"]
    return cli, root, run


def _evaluations(cli: Cli, root: Path, run: str) -> dict:
    return cli.json("runs", "show", run, "--root", root)["evaluations"]


def test_linear_probe_over_seeds_reports_mean_std_and_is_recorded(trained):
    cli, root, run = trained
    result = cli.json("probe", run, "--seeds", "2", "--root", root)
    assert result["protocol"] == "linear" and result["seeds"] == 2
    for key in ("accuracy", "balanced_accuracy", "macro_f1"):
        assert 0.0 <= result[key] <= 1.0 and result[f"{key}_std"] >= 0.0
    assert set(result["per_class_recall"]) == {"round", "elongated", "double"}
    # The blob classes differ in shape, so even a two-step encoder separates them linearly.
    assert result["balanced_accuracy"] > 0.8
    matrix = np.array(result["confusion_matrix"])
    assert matrix.shape == (3, 3) and matrix.sum() == 2 * result["n_test"]  # summed over the two seeds
    recorded = _evaluations(cli, root, run)["blobs/linear"]
    assert recorded["balanced_accuracy"] == result["balanced_accuracy"]
    # Each seed's prediction for each test image, and the bootstrap intervals built from them.
    assert np.array(recorded["test_predictions"]).shape == (2, result["n_test"])
    low, high = result["balanced_accuracy_ci"]
    assert low <= result["balanced_accuracy"] <= high
    low, high = result["difference_ci"]
    assert low <= result["difference"] <= high and result["n_test"] == 32
    assert result["random_inits"] == {"default": result["random_weights_balanced_accuracy"]}  # a ViT: one network

    baseline = cli.json("probe", run, "--random-init", "--root", root)
    assert baseline["protocol"] == "linear-random-init"
    assert "blobs/linear-random-init" in _evaluations(cli, root, run)
    printed = " ".join(cli("probe", run, "--seeds", "2", "--root", root).stderr.split())
    assert f"balanced accuracy {result['balanced_accuracy']:.3f} (95% interval {result['balanced_accuracy_ci'][0]:.3f}" \
        in printed and "over 32 test images" in printed


def test_knn_weights_votes_by_similarity():
    train = np.array([[1.0, 0.0], [0.0, 1.0], [0.1, 1.0]])
    labels = np.array([0, 1, 1])
    # Two of the three neighbours are class 1, but the query points almost exactly at the class-0 row.
    query = np.array([[1.0, 0.05]])
    classifier = knn_classifier(k=3).fit(train, labels)
    assert classifier.predict(query)[0] == 0
    assert classifier.predict(np.array([[0.05, 1.0]]))[0] == 1


def test_knn_probe_through_cli(trained):
    cli, root, run = trained
    result = cli.json("probe", run, "--knn", "5", "--root", root)
    assert result["protocol"] == "knn-5" and result["k"] == 5
    assert 0.0 <= result["balanced_accuracy"] <= 1.0
    assert "blobs/knn-5" in _evaluations(cli, root, run)


def test_few_shot_and_label_fraction_curves(trained):
    cli, root, run = trained
    shots = cli.json("probe", run, "--shots", "1,5", "--seeds", "2", "--root", root)
    assert [p["shots"] for p in shots["curve"]] == [1, 5]
    assert [p["n_train"] for p in shots["curve"]] == [3, 15]  # shots x 3 classes
    assert all("balanced_accuracy_std" in p for p in shots["curve"])
    fractions = cli.json("probe", run, "--fractions", "0.25,1.0", "--root", root)
    n_train = [p["n_train"] for p in fractions["curve"]]
    assert n_train[0] < n_train[1] == 64
    evaluations = _evaluations(cli, root, run)
    assert "blobs/few-shot" in evaluations and "blobs/label-fraction" in evaluations


def test_probe_reports_the_scratch_curve_beside_the_few_shot_probe(trained):
    cli, root, run = trained
    result = cli.json("probe", run, "--shots", "2,5", "--seeds", "2", "--scratch", "--scratch-steps", "3", "--tta", "d4",
                      "--root", root)
    assert result["protocol"] == "few-shot-vs-scratch-d4"
    assert [p["shots"] for p in result["scratch_curve"]] == [2, 5] == [p["shots"] for p in result["curve"]]
    assert all(p["draws"] == 2 and p["tta"] == "d4" and p["training"]["steps"] == 3 for p in result["scratch_curve"])
    table = cli("probe", run, "--shots", "2", "--scratch", "--scratch-steps", "2", "--root", root).stderr
    assert "from scratch" in table


def test_finetune_through_cli_compares_with_scratch(trained):
    cli, root, run = trained
    result = cli.json("probe", run, "--finetune", "--finetune-epochs", "1", "--root", root)
    assert result["protocol"] == "finetune"
    for model in ("pretrained", "scratch"):
        assert 0.0 <= result[model]["accuracy"] <= 1.0 and result[model]["epochs_run"] == 1
    # The blob store has no valid split: a stratified part of train is held out for early stopping.
    assert result["n_valid"] > 0 and result["n_train"] + result["n_valid"] == 64
    assert result["config"]["epochs"] == 1
    assert "blobs/finetune" in _evaluations(cli, root, run)


def test_finetune_on_a_share_of_the_labels_keeps_the_test_split_whole(trained):
    cli, root, run = trained
    whole = cli.json("probe", run, "--finetune", "--finetune-epochs", "1", "--root", root)
    result = cli.json("probe", run, "--finetune", "--finetune-epochs", "1", "--finetune-labels", "0.25", "--root", root)
    assert result["protocol"] == "finetune-labels0.25" and result["config"]["label_fraction"] == 0.25
    assert result["n_train"] + result["n_valid"] == 16  # a quarter of the 64 labelled train images
    assert result["n_test"] == whole["n_test"]
    assert "blobs/finetune-labels0.25" in _evaluations(cli, root, run)


def _one_block_vit() -> Encoder:
    return Encoder("vit_tiny_patch16_224", img_size=16, patch_size=4, in_chans=1, depth=1, class_token=False,
                   global_pool="avg")


@pytest.mark.parametrize("target", [None, "m0"])
def test_finetune_keeps_the_best_validation_epoch(trained, target):
    _, root, _ = trained
    store_path = root / "data" / ("widths.h5" if target else "blobs.h5")
    config = FinetuneConfig(epochs=4, lr=3e-3, patience=1)
    result = compare_with_scratch(_one_block_vit(), _one_block_vit(), store_path, task_for(store_path, target),
                                  config, "cpu")
    for model in ("pretrained", "scratch"):
        scored = result[model]
        losses = scored["valid_loss"]
        assert len(losses) == scored["epochs_run"] <= 4
        assert losses[scored["best_epoch"] - 1] == min(losses)
        if scored["epochs_run"] < 4:  # stopped early: no improvement for `patience` epochs after the best
            assert scored["epochs_run"] - scored["best_epoch"] == config.patience
        if target:
            assert scored["rmse"] == pytest.approx(scored["mse"] ** 0.5) and scored["mae"] <= scored["rmse"]
    assert result["n_valid"] == (8 if target else 13)  # valid split, or a stratified 20% of train (64)


def test_regression_target_through_cli(trained):
    cli, root, run = trained
    frozen = cli.json("probe", run, "--data", "widths", "--target", "m0", "--root", root)
    assert frozen["protocol"] == "regression-m0"
    assert frozen["n_train"] == 46 and frozen["n_test"] == 16  # the two NaN targets (train rows) are left out
    assert frozen["rmse"] == pytest.approx(frozen["mse"] ** 0.5)
    assert frozen["mae"] <= frozen["rmse"]
    # Blob width is visible in the pixels; the ridge head beats predicting the train mean.
    assert frozen["rmse"] < frozen["baseline"]["rmse"]
    assert "widths/regression-m0" in _evaluations(cli, root, run)


@pytest.mark.parametrize("args", [
    ["--knn", "5", "--shots", "1"],
    ["--target", "nope"],
    ["--target", "m0", "--knn", "3"],
    ["--shots", "one"],
    ["--fractions", "1.5"],
    ["--finetune", "--random-init"],
    ["--scratch"],
    ["--shots", "5", "--scratch-steps", "9"],
    ["--shots", "5", "--scratch", "--scratch-steps", "0"],
    ["--shots", "5", "--scratch", "--random-init"],
    ["--seeds", "0"],
])
def test_bad_probe_requests_are_one_line_errors(trained, args):
    cli, root, run = trained
    result = cli("probe", run, *args, "--root", root, expect=2)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
