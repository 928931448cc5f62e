"""The whole pipeline through the real CLI: fetch -> pretrain -> embed -> probe -> anomalies -> plot."""

from __future__ import annotations

from pathlib import Path

import pytest
from safetensors.torch import load_file

from tests.conftest import TINY_PRETRAIN


def _pipeline(cli, data: str) -> dict:
    result = cli.json("pretrain", "--data", data, "--epochs", "1", "--max-steps", "3", *TINY_PRETRAIN)
    assert result["status"] == "completed" and result["steps"] == 3
    run = result["run_id"]
    run_dir = Path(result["run_dir"])
    assert (run_dir / "encoder.safetensors").exists() and (run_dir / "state.safetensors").exists()
    embedded = cli.json("embed", run, "--data", data)
    tensors = load_file(embedded["path"])
    assert tuple(tensors["embeddings"].shape) == (embedded["n"], embedded["dim"])
    probe = cli.json("probe", run, "--data", data)
    assert 0.0 <= probe["balanced_accuracy"] <= 1.0
    anomalies = cli.json("anomalies", run, "--data", data, "--top", "5")
    assert len(anomalies["top"]) == 5 and Path(anomalies["mosaic"]).stat().st_size > 0
    scores = [row["score"] for row in anomalies["top"]]
    assert scores == sorted(scores, reverse=True)
    plots = cli.json("plot", run)
    assert all(Path(f).exists() for f in plots["files"])
    manifest = cli.json("runs", "show", run)
    assert manifest["status"] == "completed"
    assert f"{data}/linear" in manifest["evaluations"]
    return manifest


def test_pipeline_on_synthetic_store(cli, blob_store):
    manifest = _pipeline(cli, blob_store)
    assert manifest["dataset"]["n_images"] == 96
    assert manifest["environment"]["torch"]


def test_first_radio_default_dataset(cli, home):
    fetched = cli.json("fetch-data", "first-radio", "--size", "16")
    assert fetched["n_images"] == 2158
    assert fetched["classes"] == ["FRI", "FRII", "Compact", "Bent"]
    assert fetched["splits"] == {"test": 200, "train": 1758, "valid": 200}
    _pipeline(cli, "first-radio")


@pytest.mark.slow
def test_gz1_sdss_imports_with_readme_counts(cli, home, gz1_dir):
    fetched = cli.json("fetch-data", "folder", gz1_dir, "--name", "gz1", "--crop", "0.5", "--size", "16")
    assert fetched["n_images"] == 6664
    assert fetched["classes"] == ["elliptical", "spiral", "edge_on", "merger"]
    assert fetched["splits"]["test"] + fetched["splits"]["train"] == 6664
    _pipeline(cli, "gz1")


def test_bad_input_is_one_line_exit_2(cli, home):
    for args in (["probe", "no-such-run"], ["pretrain", "--data", "missing"],
                 ["fetch-data", "nonsense"], ["pretrain", "--arch", "vit-q"]):
        result = cli(*args, expect=2)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
        assert "Traceback" not in result.stderr
