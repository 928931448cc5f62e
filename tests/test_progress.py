"""The pretrain progress display: every step moves it, the ETA survives 80 columns, and logs get plain lines."""

from __future__ import annotations

import io
import re

from rich.console import Console

from astrojepa_cli.train.progress import TrainingProgress

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
