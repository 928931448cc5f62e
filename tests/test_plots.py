"""``plot``: every figure, from real tiny runs and the evaluations recorded in their manifests."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from astrojepa_cli.evaluate.explore.patch_heatmaps import on_grid
from astrojepa_cli.evaluate.figures.training import loss_curves, present_monitors, training_monitors
from tests.conftest import TINY_PRETRAIN, Cli, write_blob_store

FAST = ("--epochs", "1", "--max-steps", "2", *TINY_PRETRAIN, "--local-views", "0")
ONE_EPOCH = (*FAST, "--batch-size", "32", "--train-splits", "train")  # 64 train images: two steps make an epoch, so monitors are logged
PNG, PDF = b"\x89PNG", b"%PDF"


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Cli, Path, dict[str, str]]:
    """Two LeJEPA runs (λ 0.05 and 0.5) with evaluations recorded on the first, and one I-JEPA run."""
    root = tmp_path_factory.mktemp("plot-home")
    write_blob_store(root / "data" / "blobs.h5")
    cli = Cli()
    made = {
        "lejepa": cli.json("pretrain", "--data", "blobs", *ONE_EPOCH, "--root", root)["run_id"],
        "lejepa-lam": cli.json("pretrain", "--data", "blobs", *FAST, "--lam", "0.5", "--root", root)["run_id"],
        "ijepa": cli.json("pretrain", "--data", "blobs", *FAST, "--loss", "ijepa", "--root", root)["run_id"],
    }
    run = made["lejepa"]
    for args in (["--seeds", "1"], ["--shots", "1,4"], ["--shots", "1,4", "--random-init"],
                 ["--fractions", "0.5,1.0"]):
        cli.json("probe", run, *args, "--root", root)
    cli.json("anomalies", run, "--top", "5", "--root", root)
    return cli, root, made


def _names(files: list[str]) -> set[str]:
    return {Path(f).name for f in files}


def _check(files: list[str]) -> None:
    for file in files:
        magic = PDF if file.endswith(".pdf") else PNG
        assert Path(file).read_bytes()[:4] == magic, file


def test_run_figures_with_pdf_and_latent_map(runs):
    cli, root, made = runs
    files = cli.json("plot", made["lejepa"], "--pdf", "--latent", "pca", "--root", root)["files"]
    _check(files)
    expected = {"loss", "monitors", "confusion-blobs-linear", "few-shot-blobs", "label-fraction-blobs",
                "blobs-anomalies-knn", "latent-blobs-pca"}
    assert {f"{name}.png" for name in expected} | {f"{name}.pdf" for name in expected} <= _names(files)


def test_tsne_latent_map(runs):
    cli, root, made = runs
    files = cli.json("plot", made["lejepa"], "--latent", "tsne", "--root", root)["files"]
    _check(files)
    assert "latent-blobs-tsne.png" in _names(files) and not any(f.endswith(".pdf") for f in files)


@pytest.mark.skipif(importlib.util.find_spec("umap") is not None, reason="umap-learn is installed")
def test_umap_without_umap_learn_is_a_clear_error(runs):
    cli, root, made = runs
    result = cli("plot", made["lejepa"], "--latent", "umap", "--root", root, expect=2)
    assert "umap-learn" in result.stderr


def test_loss_terms_get_separate_axes():
    rows = [{"step": s, "epoch": 0, "loss": 1.0 / s, "pred": 0.5 / s, "sigreg": 2.0 / s, "lr": 1e-3,
             "images_per_second": 10.0} for s in range(1, 4)]
    figure = loss_curves(rows, "t")
    assert [axis.get_ylabel() for axis in figure.axes] == ["total loss", "prediction loss", "SIGReg statistic"]


def test_monitors_plot_whatever_the_manifest_has():
    epochs = [{"epoch": 0, "effective_rank": 3.0, "std_min": 0.1}, {"epoch": 1, "effective_rank": 4.0}]
    assert present_monitors(epochs) == ["effective_rank", "std_min"]
    figure = training_monitors(epochs, "t")
    assert [axis.get_ylabel() for axis in figure.axes] == ["effective rank (RankMe)", "smallest per-dimension std"]
    assert list(figure.axes[0].lines[0].get_ydata()) == [3.0, 4.0]


def test_ijepa_patch_heatmaps(runs):
    cli, root, made = runs
    files = cli.json("plot", made["ijepa"], "--patches", "obj4", "--root", root)["files"]
    _check(files)
    assert "patches-blobs-obj4.png" in _names(files)


def test_patch_heatmaps_need_an_ijepa_run(runs):
    cli, root, made = runs
    result = cli("plot", made["lejepa"], "--patches", "obj4", "--root", root, expect=2)
    assert "I-JEPA" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    cli("plot", made["ijepa"], "--patches", "no-such-id", "--root", root, expect=2)


def test_patch_values_land_on_their_grid_cells():
    targets = np.array([[0, 1], [1, 5]])
    grid = on_grid((2, 3), targets, np.array([[1.0, 2.0], [4.0, 6.0]]))
    assert grid[0, 0] == 1.0 and grid[0, 1] == 3.0 and grid[1, 2] == 6.0  # patch 1 averages its two blocks
    assert np.isnan(grid[0, 2]) and np.isnan(grid[1, 0])


def test_plot_compare_overlays_runs(runs, tmp_path):
    cli, root, made = runs
    files = cli.json("plot", "compare", made["lejepa"], made["lejepa-lam"], "--out", tmp_path, "--pdf",
                     "--root", root)["files"]
    _check(files)
    assert _names(files) == {"compare.png", "compare.pdf"}
    cli("plot", "compare", made["lejepa"], "--root", root, expect=2)
    cli("plot", made["lejepa"], made["lejepa-lam"], "--root", root, expect=2)
