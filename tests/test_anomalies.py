"""``anomalies``: four scorers, ranked CSV/JSON and mosaic, and --eval-class ROC-AUC / precision@K."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from astrojepa_cli.data.store_writer import StoreWriter
from astrojepa_cli.evaluate.explore.anomalies import SCORERS, score
from tests.conftest import TINY_PRETRAIN, Cli

N_COMMON, N_RARE = 60, 6


def write_rare_class_store(path: Path, size: int = 16) -> None:
    """60 round blobs and 6 checkerboards: the checkerboards are the rare class 'odd'."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size, 0:size] - (size - 1) / 2
    images, labels = [], []
    for i in range(N_COMMON):
        sigma = rng.uniform(1.8, 2.6)
        images.append(200 * np.exp(-(x**2 + y**2) / (2 * sigma**2)) + rng.normal(10, 4, (size, size)))
        labels.append(0)
    checker = ((np.indices((size, size)) // 2).sum(0) % 2) * 220.0
    for i in range(N_RARE):
        images.append(checker + rng.normal(10, 4, (size, size)))
        labels.append(1)
    order = rng.permutation(len(images))
    pixels = np.clip(np.stack(images)[order], 0, 255).astype(np.uint8)[..., None]
    split = ["train"] * len(order)
    with StoreWriter(path, name="rare", image_shape=(size, size, 1), dtype=np.uint8, class_names=["blob", "odd"],
                     provenance={"source": "test"}) as writer:
        writer.append(pixels, list(np.asarray(labels)[order]), [f"r{i}" for i in range(len(order))], split)
        writer.finish()


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Cli, Path, str]:
    root = tmp_path_factory.mktemp("anomaly-home")
    write_rare_class_store(root / "data" / "rare.h5")
    cli = Cli()
    run = cli.json("pretrain", "--data", "rare", "--epochs", "1", "--max-steps", "2", *TINY_PRETRAIN,
                   "--local-views", "0", "--root", root)["run_id"]
    return cli, root, run


@pytest.mark.parametrize("scorer", sorted(SCORERS))
def test_each_scorer_ranks_a_planted_outlier_first(scorer):
    embeddings = np.random.default_rng(0).normal(size=(200, 8))
    embeddings[17] += 8.0
    assert int(np.argmax(score(embeddings, scorer, k=10))) == 17


@pytest.mark.parametrize("scorer", sorted(SCORERS))
def test_scorers_through_cli_with_rare_class_evaluation(trained, scorer):
    cli, root, run = trained
    result = cli.json("anomalies", run, "--scorer", scorer, "--top", "6", "--eval-class", "odd", "--root", root)
    top = result["top"]
    assert len(top) == 6 and [r["rank"] for r in top] == list(range(1, 7))
    assert [r["score"] for r in top] == sorted((r["score"] for r in top), reverse=True)
    assert Path(result["mosaic"]).read_bytes()[:4] == b"\x89PNG"
    with open(result["csv"], newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == N_COMMON + N_RARE and rows[0]["id"] == top[0]["id"]

    # The reported numbers agree with the ranked list on disk.
    ranked = json.loads(Path(result["json"]).read_text())
    truth = np.array([r["label"] == "odd" for r in ranked])
    scores = np.array([r["score"] for r in ranked])
    measured = result["evaluation"]
    assert measured["roc_auc"] == pytest.approx(roc_auc_score(truth, scores))
    assert measured["precision_at_k"] == pytest.approx(truth[:6].mean())
    assert measured["base_rate"] == pytest.approx(N_RARE / (N_COMMON + N_RARE))
    recorded = cli.json("runs", "show", run, "--root", root)["evaluations"][f"rare/anomalies-{scorer}"]
    assert recorded["evaluation"]["roc_auc"] == measured["roc_auc"] and recorded["top"] == 6


def test_checkerboards_are_found_by_the_gaussian_score(trained):
    cli, root, run = trained
    measured = cli.json("anomalies", run, "--scorer", "gaussian", "--top", "6", "--eval-class", "odd",
                        "--root", root)["evaluation"]
    # Checkerboards look nothing like blobs; a ranking that finds them beats chance (AUC 0.5, precision 0.09).
    assert measured["roc_auc"] > 0.8 and measured["precision_at_k"] > measured["base_rate"]


def test_rankings_of_another_embedding_or_tta_are_kept_apart(trained):
    cli, root, run = trained
    plain = cli.json("anomalies", run, "--top", "3", "--root", root)
    pooled = cli.json("anomalies", run, "--top", "3", "--pool", "last2", "--tta", "d4", "--root", root)
    assert Path(plain["csv"]).parent.name == "rare-knn" and Path(pooled["csv"]).parent.name == "rare-knn-last2-d4"
    evaluations = cli.json("runs", "show", run, "--root", root)["evaluations"]
    assert evaluations["rare/anomalies-knn"]["json"] == plain["json"]
    assert evaluations["rare/anomalies-knn-last2-d4"]["json"] == pooled["json"]
    assert json.loads(Path(plain["json"]).read_text()) != json.loads(Path(pooled["json"]).read_text())


@pytest.mark.parametrize("args", [["--scorer", "magic"], ["--eval-class", "unicorn"], ["--top", "0"]])
def test_bad_anomaly_requests_are_one_line_errors(trained, args):
    cli, root, run = trained
    result = cli("anomalies", run, *args, "--root", root, expect=2)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
