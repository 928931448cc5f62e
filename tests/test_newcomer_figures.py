"""Figures a scientist can publish: plain words in titles and labels, no run ids unless asked, markers on
short curves, one panel per distinct curve, tick labels without spurious digits; and a slow step named
before the run has spent its time."""

from __future__ import annotations

import io
import time

import pytest
from rich.console import Console

from astrojepa_cli.evaluate.figures import run_figures
from astrojepa_cli.evaluate.figures.labels import FewestDigits, class_label, probe_name
from astrojepa_cli.evaluate.figures.plotting import plt
from astrojepa_cli.evaluate.figures.training import loss_curves
from astrojepa_cli.runs import open_run
from astrojepa_cli.train.progress import TrainingProgress
from tests.conftest import TINY_PRETRAIN


def _ijepa_rows(count: int) -> list[dict]:
    return [{"step": s, "epoch": 0, "loss": 1 / s, "pred": 1 / s, "target_var": 0.5, "lr": 1e-3} for s in range(1, count + 1)]


def test_ijepa_loss_is_one_panel_with_markers_when_points_are_few():
    figure = loss_curves(_ijepa_rows(12), "training loss")
    labels = [axis.get_ylabel() for axis in figure.axes]
    assert labels == ["total loss = prediction loss", "target variance"]
    assert all(axis.lines[0].get_marker() == "o" for axis in figure.axes)
    dense = loss_curves(_ijepa_rows(60), "training loss")
    assert all(axis.lines[0].get_marker() in (None, "None", "") for axis in dense.axes)
    plt.close("all")


def test_tick_labels_carry_no_spurious_digits():
    formatter = FewestDigits()
    assert formatter.format_ticks([0.0702, 0.07025, 0.0703]) == ["0.0702", "0.07025", "0.0703"]
    assert formatter.format_ticks([0.06, 0.07, 0.08]) == ["0.06", "0.07", "0.08"]
    assert formatter.format_ticks([1000, 1500, 2000]) == ["1000", "1500", "2000"]
    assert formatter.format_ticks([0.1075, 0.11, 0.1125]) == ["0.1075", "0.11", "0.1125"]


def test_probe_and_class_names_read_as_words():
    assert probe_name("linear-last2") == "linear probe, last two stages"
    assert probe_name("linear-random-init-last2") == "linear probe of random weights, last two stages"
    assert class_label("edge_on") == "edge-on"


@pytest.fixture
def evaluated_run(cli, blob_store):
    result = cli.json("pretrain", "--data", "blobs", "--max-steps", "4", "--train-splits", "train", *TINY_PRETRAIN)
    cli("probe", result["run_id"])
    return open_run(result["run_id"])


def test_run_figures_have_no_run_id_unless_a_title_is_given(evaluated_run, tmp_path, monkeypatch):
    drawn = []

    def keep_titles(figure, path, pdf=False):
        titles = [figure._suptitle.get_text() if figure._suptitle else ""]
        titles += [axis.get_title() for axis in figure.axes]
        drawn.append((path.name, "\n".join(titles), [t.get_text() for axis in figure.axes
                                                     for t in axis.get_xticklabels()]))
        return saved(figure, path, pdf)

    saved = run_figures.save_figure
    monkeypatch.setattr(run_figures, "save_figure", keep_titles)
    run_figures.training_figures(evaluated_run, tmp_path, False)
    run_figures.evaluation_figures(evaluated_run, tmp_path, False)
    assert drawn and all(evaluated_run.id not in titles for _, titles, _ in drawn)
    loss = next(titles for name, titles, _ in drawn if name == "loss.png")
    assert "training loss: LeJEPA, ViT-T encoder, on blobs" in loss
    confusion = next(titles for name, titles, _ in drawn if name.startswith("confusion-"))
    assert "linear probe on blobs" in confusion
    drawn.clear()
    run_figures.training_figures(evaluated_run, tmp_path, False, title=f"Figure 2: {evaluated_run.id}")
    assert drawn[0][1].startswith(f"Figure 2: {evaluated_run.id}\ntraining loss")
    assert (tmp_path / "loss.png").stat().st_size > 0


def test_a_slow_second_step_is_named_with_a_recipe():
    console = Console(file=io.StringIO(), force_terminal=False, width=200)
    seen = []

    def slow(seconds: float, left: int) -> str:
        seen.append((seconds, left))
        return f"one step took {seconds:.1f} s"

    with TrainingProgress(True, total=10, start=0, console=console, interval=3600.0, slow_step=slow) as bar:
        bar.advance(1)
        bar.update(1, 0, {"loss": 1.0}, 8.0)  # a log step advances to the same step again
        bar.first_step_done -= 12.0  # as if the second step took 12 s
        bar.advance(2)
        bar.advance(3)
    assert len(seen) == 1 and seen[0][0] >= 12.0 and seen[0][1] == 8
    assert console.file.getvalue().count("warning: one step took") == 1
