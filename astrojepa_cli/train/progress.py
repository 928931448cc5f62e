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

import math
import time
from datetime import timedelta
from typing import Callable

from rich.console import Console
from rich.markup import escape
from rich.table import Column
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from astrojepa_cli.console import images_per_second, stderr
from astrojepa_cli.errors import UserError

PLAIN_INTERVAL_S = 30.0


class TrainingProgress:
    """``slow_step(seconds, steps_left)`` gives the warning, if any, that the second step's time calls for."""

    def __init__(self, enabled: bool, total: int, start: int, console: Console = stderr,
                 interval: float = PLAIN_INTERVAL_S,
                 slow_step: Callable[[float, int], str | None] | None = None) -> None:
        self.console, self.total, self.start, self.interval = console, total, start, interval
        self.plain = enabled and not console.is_terminal
        self.slow_step = slow_step
        self.progress = Progress(
            TextColumn("[bold]pretrain[/] ep {task.fields[epoch]}"), BarColumn(bar_width=16), MofNCompleteColumn(),
            TimeRemainingColumn(), TextColumn("{task.fields[rate]}"),
            TextColumn("{task.fields[terms]}", table_column=Column(ratio=1, no_wrap=True, overflow="ellipsis")),
            console=console, disable=not enabled or self.plain, expand=True,
        )
        self.task = self.progress.add_task("pretrain", total=total, completed=start, epoch=0, terms="", rate="- img/s")
        self.step, self.epoch, self.terms, self.rate = start, 0, "", "- img/s"
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
        if self.slow_step is not None and step == self.start + 1 and self.step == self.start:
            self.first_step_done = time.monotonic()
        elif self.slow_step is not None and step == self.start + 2 and self.step == self.start + 1:
            # The second step is timed: the first also pays for allocation and kernel selection.
            if warning := self.slow_step(time.monotonic() - self.first_step_done, self.total - step):
                self.warn(warning)
            self.slow_step = None
        self.step = step
        self.progress.update(self.task, completed=step)
        if self.plain and time.monotonic() - self.last_line >= self.interval:
            self.last_line = time.monotonic()
            self.console.print(self.line(), highlight=False, soft_wrap=True)

    def update(self, step: int, epoch: int, means: dict[str, float], rate: float) -> None:
        """The latest logged window's loss-term means, and the run's images/s so far (the manifest's figure)."""
        self.epoch, self.rate = epoch, images_per_second(rate)
        self.terms = " ".join(f"{k} {v:.4g}" for k, v in means.items())
        self.progress.update(self.task, epoch=epoch, terms=self.terms, rate=self.rate)
        self.advance(step)

    def line(self) -> str:
        """One plain progress line: ``pretrain step 120/540 (22%), epoch 1, ETA 0:03:10, 41 img/s, loss 0.41``."""
        done = self.step - self.start
        remaining = (time.monotonic() - self.started) / done * (self.total - self.step) if done > 0 else None
        eta = str(timedelta(seconds=round(remaining))) if remaining is not None else "unknown"
        parts = [f"pretrain step {self.step}/{self.total} ({self.step / max(self.total, 1):.0%})",
                 f"epoch {self.epoch}", f"ETA {eta}", self.rate] + ([self.terms] if self.terms else [])
        return ", ".join(parts)

    def warn(self, message: str) -> None:
        self.console.print(f"[yellow]warning:[/] {escape(message)}", highlight=False)


class CalibrationStatus:
    """What a ``--budget`` calibration is doing, on stderr while it runs: a live status line on a
    terminal; elsewhere one line at the start and one per step slower than ``LOGGED_STEP_S`` (a log
    shows that a slow calibration has not hung)."""

    LOGGED_STEP_S = 5.0

    def __init__(self, enabled: bool, budget: str, console: Console = stderr,
                 clock: Callable[[], float] = time.perf_counter, budget_s: float = math.inf) -> None:
        self.enabled, self.budget, self.console = enabled, budget, console
        self.steps, self.tick = 0, time.monotonic()
        self.clock, self.budget_s, self.started = clock, budget_s, clock()
        self.status = console.status(self._text("starting")) if enabled and console.is_terminal else None

    def _text(self, doing: str) -> str:
        return f"calibrating --budget {self.budget} on this machine: {doing}"

    def __enter__(self) -> "CalibrationStatus":
        if self.status is not None:
            self.status.__enter__()
        elif self.enabled:
            self.console.print(self._text("timing a few training steps"), highlight=False, markup=False)
        return self

    def __exit__(self, *exc) -> None:
        if self.status is not None:
            self.status.__exit__(*exc)

    def stepped(self) -> None:
        """A calibration step has finished; a clear error as soon as calibration alone outlasts the budget
        (``clock`` is the budget's clock), rather than after the steps still to time."""
        spent = self.clock() - self.started
        if spent > self.budget_s:
            raise UserError(f"a budget of {self.budget} is too short: calibration alone took {spent:.0f} s "
                            f"for {self.steps + 1} step{'s' if self.steps else ''} on this machine")
        now, self.steps = time.monotonic(), self.steps + 1
        doing = f"step {self.steps} took {now - self.tick:.3g} s"
        if self.status is not None:
            self.status.update(self._text(doing))
        elif self.enabled and now - self.tick >= self.LOGGED_STEP_S:
            self.console.print(self._text(doing), highlight=False, markup=False)
        self.tick = now
