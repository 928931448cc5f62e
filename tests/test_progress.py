"""Progress displays: pretrain (every step moves it, the ETA survives 80 columns, logs get plain lines) and
the embedding of a store behind probe, embed, anomalies and similar."""

from __future__ import annotations

import io
import re

from rich.console import Console

from astrojepa_cli.train.progress import TrainingProgress
from astrojepa_cli.work_progress import with_progress

ETA = re.compile(r"\d+:\d\d:\d\d|-:--:--")
TERMS = {"loss": 0.41450554, "pred": 0.05388192, "sigreg": 7.26635456, "embedding_std": 0.9}


def test_every_step_moves_the_bar_and_the_eta_fits_80_columns():
    console = Console(file=io.StringIO(), force_terminal=True, width=80)
    with TrainingProgress(True, total=540, start=0, console=console) as bar:
        bar.update(1, 0, TERMS, 41.0)
        for step in range(2, 8):
            bar.advance(step)
        assert bar.progress.tasks[0].completed == 7
        shown = Console(file=io.StringIO(), width=80, color_system=None)
        shown.print(bar.progress.get_renderable())
    text = shown.file.getvalue()
    assert "7/540" in text and ETA.search(text), text
    assert max(len(line) for line in text.splitlines()) <= 80


def test_plain_lines_when_stderr_is_not_a_terminal():
    console = Console(file=io.StringIO(), force_terminal=False, width=200)
    with TrainingProgress(True, total=10, start=0, console=console, interval=0.0) as bar:
        bar.update(1, 0, TERMS, 41.0)
        for step in range(2, 11):
            bar.advance(step)
    lines = console.file.getvalue().splitlines()
    assert len(lines) == 11 and "\x1b" not in console.file.getvalue()
    assert lines[4].startswith("pretrain step 5/10 (50%), epoch 0, ETA ") and "41 img/s, loss 0.4145" in lines[4]


def test_quiet_prints_nothing():
    console = Console(file=io.StringIO(), force_terminal=False)
    with TrainingProgress(False, total=10, start=0, console=console, interval=0.0) as bar:
        bar.advance(3)
    assert console.file.getvalue() == ""


def test_embedding_progress_counts_chunks_on_a_terminal_and_leaves_no_trace():
    console = Console(file=io.StringIO(), force_terminal=True, width=80)
    seen = []
    for item in with_progress(range(4), 4, "embedding 4,000 images", console=console):
        seen.append(item)
    assert seen == [0, 1, 2, 3]
    assert "embedding 4,000 images" in console.file.getvalue()  # drawn while running (transient)


def test_embedding_progress_in_a_log_is_plain_lines_at_the_interval():
    console = Console(file=io.StringIO(), force_terminal=False, width=200)
    assert list(with_progress(range(4), 4, "embedding 400 images", console=console, interval=0.0)) == [0, 1, 2, 3]
    lines = console.file.getvalue().splitlines()
    assert len(lines) == 3 and "\x1b" not in console.file.getvalue()  # the last chunk needs no line
    assert lines[1].startswith("embedding 400 images: 2/4 (50%), ETA ")
    quiet = Console(file=io.StringIO(), force_terminal=False)
    assert list(with_progress(range(4), 4, "embedding", console=quiet, interval=3600.0)) == [0, 1, 2, 3]
    assert quiet.file.getvalue() == ""
