"""Every figure of ``plot``, ``similar`` and ``anomalies``, rendered from tiny real runs and read back as
matplotlib objects: axis labels in words, whole-number ticks on count axes, titles naming the data
and the score, baselines on the curves, and one colour per run in comparisons."""

from __future__ import annotations

from pathlib import Path

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure

from tests.conftest import TINY_PRETRAIN, Cli
from tests.source_files import catalog_folder

FAST = ("--epochs", "1", "--max-steps", "2", *TINY_PRETRAIN, "--local-views", "0", "--batch-size", "24")
N = 36


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> tuple[Cli, Path, dict[str, str]]:
    """A labelled folder with sky positions; a LeJEPA run (one epoch, so monitors) with probes, few-shot curves
    (two seeds, and random weights) and anomalies, and an I-JEPA run to compare it with."""
    root, folder = tmp_path_factory.mktemp("home"), tmp_path_factory.mktemp("sky")
    catalog_folder(folder, N, 16, "label,ra,dec",
                   lambda i: f"{('elliptical', 'spiral')[i % 2]},{150 + i / 100},{2 + i / 100}")
    cli = Cli()
    cli.json("fetch-data", "folder", folder, "--name", "sky", "--size", "16", "--root", root)
    runs = {"lejepa": cli.json("pretrain", "--data", "sky", *FAST, "--root", root)["run_id"],
            "ijepa": cli.json("pretrain", "--data", "sky", *FAST, "--loss", "ijepa", "--root", root)["run_id"]}
    for args in (["--seeds", "2"], ["--random-init"], ["--shots", "1,3", "--seeds", "2"],
                 ["--shots", "1,3", "--seeds", "2", "--random-init"]):
        cli.json("probe", runs["lejepa"], *args, "--root", root)
    cli.json("anomalies", runs["lejepa"], "--top", "4", "--root", root)
    return cli, root, runs


@pytest.fixture
def drawn(monkeypatch) -> list[Figure]:
    """Every figure saved while the test runs, in order."""
    saved: list[Figure] = []
    original = Figure.savefig

    def record(figure, *args, **kwargs):
        saved.append(figure)
        return original(figure, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", record)
    return saved


def _plot(cli: Cli, root: Path, drawn: list[Figure], *args) -> dict[str, Figure]:
    files = cli.json("plot", *args, "--root", root)["files"]
    assert len(files) == len(drawn)
    return {Path(file).stem: figure for file, figure in zip(files, drawn)}


def _whole_ticks(axis) -> bool:
    ticks = [t for t in axis.get_xticks() if axis.get_xlim()[0] <= t <= axis.get_xlim()[1]]
    return bool(ticks) and all(float(t).is_integer() for t in ticks)


def _labels(figure: Figure) -> list[str]:
    return [a.get_xlabel() for a in figure.axes] + [a.get_ylabel() for a in figure.axes]


def test_run_figures_speak_words_and_name_data_and_score(made, drawn):
    cli, root, runs = made
    figures = _plot(cli, root, drawn, runs["lejepa"], "--latent", "pca")
    assert {"loss", "monitors", "confusion-sky-linear", "few-shot-sky", "sky-anomalies-knn",
            "latent-sky-pca"} <= set(figures)
    for figure in figures.values():
        assert not [label for label in _labels(figure) if "_" in label], _labels(figure)

    loss = figures["loss"]
    assert [a.get_ylabel() for a in loss.axes] == ["total loss", "prediction loss", "projection variance", "SIGReg statistic"]
    assert all(_whole_ticks(a) for a in loss.axes) and "on sky" in loss.get_suptitle()
    assert all(_whole_ticks(a) for a in figures["monitors"].axes)

    title = figures["confusion-sky-linear"].axes[0].get_title()
    assert "on sky" in title and "balanced accuracy" in title and "random weights" in title and "chance 0.500" in title

    curves = figures["few-shot-sky"].axes[0]
    legend = [t.get_text() for t in curves.get_legend().get_texts()]
    assert "random weights, same architecture" in legend and "chance level (0.50)" in legend
    assert "pretrained: ± 1 std over 2 seeds" in legend
    assert [t.get_text() for t in curves.get_xticklabels()] == ["1", "3"] and curves.get_ylabel() == "balanced accuracy"

    latent = figures["latent-sky-pca"].axes[0]
    assert latent.get_xlabel().startswith("PC1 (") and "% of the variance" in latent.get_xlabel()
    assert all(0 < c.get_alpha() < 1 for c in latent.collections if isinstance(c, PathCollection))
    assert latent.get_title().startswith("PCA map of sky")

    mosaic = figures["sky-anomalies-knn"]
    assert "mean distance to the 10 nearest" in mosaic.get_supxlabel()
    assert "RA 150." in mosaic.axes[0].get_title() and "Dec +2." in mosaic.axes[0].get_title()
    # No empty band: the title sits just above the first row of images.
    renderer = FigureCanvasAgg(mosaic).get_renderer()
    mosaic.draw(renderer)
    suptitle = next(text for text in mosaic.texts if text.get_text() == mosaic.get_suptitle())
    gap = suptitle.get_window_extent(renderer).y0 - mosaic.axes[0].get_tightbbox(renderer).y1
    assert gap < 0.05 * mosaic.bbox.height


def test_compare_keeps_losses_apart_and_one_colour_per_run(made, drawn, tmp_path):
    cli, root, runs = made
    first = cli.json("plot", "compare", runs["lejepa"], runs["ijepa"], "--out", tmp_path, "--root", root)["files"]
    figure = drawn[0]
    assert "training on sky" in figure.get_suptitle()
    for axis in figure.axes:
        losses = {text.get_text().rsplit("(", 1)[1] for text in axis.get_legend().get_texts()}
        if axis.get_xlabel() == "step":
            assert len(losses) == 1, "one loss function per panel"
        assert _whole_ticks(axis) and "_" not in axis.get_ylabel()
    colours = {}
    for axis in figure.axes:
        for line, text in zip(axis.get_lines(), axis.get_legend().get_texts()):
            colours.setdefault(text.get_text(), set()).add(line.get_color())
    assert all(len(c) == 1 for c in colours.values()) and len(set.union(*colours.values())) == 2
    second = cli.json("plot", "compare", runs["ijepa"], runs["lejepa"], "--out", tmp_path, "--root", root)["files"]
    assert second != first and all(Path(f).exists() for f in first + second)


def test_similar_and_anomaly_mosaics_say_what_their_numbers_mean(made, drawn):
    cli, root, runs = made
    cli.json("similar", runs["lejepa"], "--id", "g3", "--k", "4", "--root", root)
    cli.json("anomalies", runs["lejepa"], "--scorer", "gaussian", "--top", "3", "--root", root)
    similar, anomalies = drawn
    assert "cosine similarity" in similar.get_supxlabel()
    assert all("RA " in axis.get_title() for axis in similar.axes[:5])
    assert "Mahalanobis distance" in anomalies.get_supxlabel()
    assert all("Dec +2." in axis.get_title() for axis in anomalies.axes[:3])


def test_umap_without_umap_learn_fails_before_any_work(made, tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "umap" else real(name, *a))
    cli, root, runs = made
    result = cli("plot", runs["lejepa"], "--latent", "umap", "--out", tmp_path / "figures", "--root", root, expect=2)
    assert "astrojepa[umap]" in result.stderr and not (tmp_path / "figures").exists()
