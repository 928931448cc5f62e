"""``probe`` puts its score beside the same network with random weights (cached) and chance."""

from __future__ import annotations

import json

from astrojepa_cli.evaluate.probes.context import collapse_warning, random_init_key, verdict
from tests.conftest import TINY_PRETRAIN

FAST = ("--max-steps", "2", *TINY_PRETRAIN, "--local-views", "0", "--loss", "simclr", "--arch", "resnet18")


def _manifest(home, run: str) -> dict:
    return json.loads((home / "runs" / run / "manifest.json").read_text())


def test_probe_reports_random_weights_and_chance_and_caches_the_baseline(cli, blob_store, home):
    run = cli.json("pretrain", "--data", "blobs", *FAST)["run_id"]
    first = cli("probe", run, "--tta", "d4")
    assert "the same network with random weights scores" in first.stderr and "chance is 0.333" in first.stderr
    evaluations = _manifest(home, run)["evaluations"]
    assert {"blobs/linear-d4", "blobs/linear-random-init-d4"} <= set(evaluations)
    cached = evaluations["blobs/linear-random-init-d4"]

    again = cli.json("probe", run, "--tta", "d4")
    assert again["random_weights_balanced_accuracy"] == cached["balanced_accuracy"]
    assert again["chance_balanced_accuracy"] == 1 / 3
    assert _manifest(home, run)["evaluations"]["blobs/linear-random-init-d4"]["time"] == cached["time"]
    # --random-init records under the very key the context reads.
    explicit = cli.json("probe", run, "--random-init", "--knn", "5")
    assert explicit["protocol"] == "knn-5-random-init"
    knn = cli.json("probe", run, "--knn", "5")
    assert knn["random_weights_balanced_accuracy"] == explicit["balanced_accuracy"]


def test_keys_sentences_and_collapse():
    assert random_init_key("gz1/linear-last2-d4", "linear") == "gz1/linear-random-init-last2-d4"
    assert random_init_key("gz1/knn-20", "knn-20") == "gz1/knn-20-random-init"
    paid = verdict(0.80, [0.74, 0.86], 0.70, 0.25, [0.04, 0.16], 200)
    assert "the pretraining paid: +0.100 (95% interval +0.040 to +0.160 over 200 test images)" in paid
    assert "no measurable difference" in verdict(0.700, [0.64, 0.76], 0.705, 0.25, [-0.05, 0.04], 200)
    assert "random weights do better" in verdict(0.60, [0.54, 0.66], 0.70, 0.25, [-0.16, -0.04], 200)
    assert collapse_warning({"epochs": [{"effective_rank": 4.2}]}).startswith("the embeddings' effective rank was 4.2")
    assert collapse_warning({"epochs": [{"effective_rank": 40.0}]}) is None
    assert collapse_warning({"epochs": []}) is None
