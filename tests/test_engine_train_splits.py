"""Pretraining leaves a labelled store's test split out (probes score it) unless --train-splits says otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from astrojepa_cli.data.store_writer import StoreWriter

SPLITS = ["train"] * 32 + ["valid"] * 8 + ["test"] * 8
TINY = ("--data", "thirds", "--arch", "vit-t", "--img-size", "16", "--patch-size", "8", "--batch-size", "8",
        "--local-views", "0", "--epochs", "1", "--log-every", "1", "--quiet")


@pytest.fixture
def split_store(home) -> str:
    """48 labelled 16 px images: 32 train, 8 valid, 8 test."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, size=(len(SPLITS), 16, 16, 1), dtype=np.uint8)
    with StoreWriter(home / "data" / "thirds.h5", name="thirds", image_shape=(16, 16, 1), dtype=np.uint8,
                     class_names=["a", "b"], provenance={"source": "test"}) as writer:
        writer.append(images, [i % 2 for i in range(len(SPLITS))], [f"o{i}" for i in range(len(SPLITS))], SPLITS)
        writer.finish()
    return "thirds"


def _manifest(result: dict) -> dict:
    return json.loads((Path(result["run_dir"]) / "manifest.json").read_text())


def _images_seen(result: dict) -> int:
    rows = [json.loads(line) for line in (Path(result["run_dir"]) / "metrics.jsonl").read_text().splitlines()]
    return 8 * len(rows)  # one row per step (--log-every 1) of 8 images


def test_every_split_but_test_by_default_and_all_on_request(cli, split_store):
    result = cli.json("pretrain", *TINY)
    manifest = _manifest(result)
    assert manifest["config"]["train_splits"] == ["train", "valid"]
    assert manifest["dataset"]["n_train_images"] == 40
    assert result["steps"] == 40 // 8 and _images_seen(result) == 40
    every = cli.json("pretrain", *TINY, "--train-splits", "all")
    assert _manifest(every)["config"]["train_splits"] == ["train", "valid", "test"]
    assert every["steps"] == 48 // 8 and _images_seen(every) == 48
    # The online probe still learns from the train split and is scored on the test split.
    assert 0.0 <= manifest["epochs"][0]["online_probe_accuracy"] <= 1.0


def test_train_splits_option_chooses_splits(cli, split_store):
    result = cli.json("pretrain", *TINY, "--train-splits", "train, valid")
    manifest = _manifest(result)
    assert manifest["config"]["train_splits"] == ["train", "valid"]
    assert manifest["dataset"]["n_train_images"] == 40
    assert result["steps"] == 40 // 8 and _images_seen(result) == 40


def test_train_splits_from_a_config_file(cli, split_store, tmp_path):
    config = tmp_path / "splits.toml"
    config.write_text('train_splits = ["test"]\n')
    result = cli.json("pretrain", *TINY, "--config", str(config))
    assert _manifest(result)["config"]["train_splits"] == ["test"]
    assert result["steps"] == 8 // 8


@pytest.mark.parametrize("splits, message", [
    ("val", "--train-splits takes store splits: a comma list of train, valid, test"),
    (",", "--train-splits needs at least one split name"),
])
def test_bad_train_splits_is_one_error_line(cli, split_store, splits, message):
    result = cli("pretrain", *TINY, "--train-splits", splits, expect=2)
    assert result.stderr.startswith(f"error: {message}") and len(result.stderr.strip().splitlines()) == 1


def test_resume_keeps_the_recorded_splits(cli, split_store):
    first = cli.json("pretrain", *TINY, "--train-splits", "valid,test", "--max-steps", "1", "--keep-state")
    refused = cli("pretrain", "--resume", first["run_id"], "--train-splits", "train", expect=2)
    assert "cannot change --train-splits" in refused.stderr
    resumed = cli.json("pretrain", "--resume", first["run_id"], "--max-steps", "2", "--quiet")
    assert resumed["steps"] == 2
    assert _manifest(resumed)["config"]["train_splits"] == ["valid", "test"]
