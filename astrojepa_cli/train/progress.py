"""The progress display of ``pretrain`` on stderr: step, epoch, ETA, images/s and loss terms.

The loop calls :meth:`TrainingProgress.advance` after every step with the step
number alone (no tensor is read, so the device is never synchronised) and
:meth:`TrainingProgress.update` with loss means and throughput every
``--log-every`` steps, so the bar moves every step while the loss shown may lag.
On a terminal this is a rich bar whose step count and ETA come first, so that an
80-column window cuts the loss terms, not the ETA. Elsewhere (nohup, SLURM logs)
it is one plain line every ``interval`` seconds.
"""

from __future__ import annotations

import time
from datetime import timedelta

from rich.console import Console
from rich.table import Column
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from astrojepa_cli.console import stderr

PLAIN_INTERVAL_S = 30.0


class TrainingProgress:
    def __init__(self, enabled: bool, total: int, start: int, console: Console = stderr,
                 interval: float = PLAIN_INTERVAL_S) -> None:
        self.console, self.total, self.start, self.interval = console, total, start, interval
        self.plain = enabled and not console.is_terminal
        self.progress = Progress(
            TextColumn("[bold]pretrain[/] ep {task.fields[epoch]}"), BarColumn(bar_width=16), MofNCompleteColumn(),
            TimeRemainingColumn(), TextColumn("{task.fields[rate]} img/s"),
            TextColumn("{task.fields[terms]}", table_column=Column(ratio=1, no_wrap=True, overflow="ellipsis")),
            console=console, disable=not enabled or self.plain, expand=True,
        )
        self.task = self.progress.add_task("pretrain", total=total, completed=start, epoch=0, terms="", rate="-")
        self.step, self.epoch, self.terms, self.rate = start, 0, "", "-"
        self.started = self.last_line = time.monotonic()

    def __enter__(self) -> "TrainingProgress":
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)
        if self.plain and self.step != self.start:
            self.console.print(self.line(), highlight=False, soft_wrap=True)

    def advance(self, step: int) -> None:
        """Step ``step`` is done: move the bar (an integer only, nothing read from the device)."""
        self.step = step
        self.progress.update(self.task, completed=step)
        if self.plain and time.monotonic() - self.last_line >= self.interval:
            self.last_line = time.monotonic()
            self.console.print(self.line(), highlight=False, soft_wrap=True)

    def update(self, step: int, epoch: int, means: dict[str, float], rate: float) -> None:
        """The latest logged window: loss-term means and images/s."""
        self.epoch, self.rate = epoch, f"{rate:.0f}"
        self.terms = " ".join(f"{k} {v:.4g}" for k, v in means.items())
        self.progress.update(self.task, epoch=epoch, terms=self.terms, rate=self.rate)
        self.advance(step)

    def line(self) -> str:
        """One plain progress line: ``pretrain step 120/540 (22%), epoch 1, ETA 0:03:10, 41 img/s, loss 0.41``."""
        done = self.step - self.start
        remaining = (time.monotonic() - self.started) / done * (self.total - self.step) if done > 0 else None
        eta = str(timedelta(seconds=round(remaining))) if remaining is not None else "unknown"
        parts = [f"pretrain step {self.step}/{self.total} ({self.step / max(self.total, 1):.0%})",
                 f"epoch {self.epoch}", f"ETA {eta}", f"{self.rate} img/s"] + ([self.terms] if self.terms else [])
        return ", ".join(parts)

    def warn(self, message: str) -> None:
        self.console.print(f"[yellow]warning:[/] {message}", highlight=False)
