"""Progress of long evaluation work (embedding every image of a store) on stderr.

On a terminal it is a transient rich bar; elsewhere (nohup, SLURM logs, pipes) it is one
plain line every ``interval`` seconds, so a log shows the work is alive without filling up.
Used by ``probe``, ``embed``, ``anomalies`` and ``similar`` through the feature extraction.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Iterable, Iterator, TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from astrojepa_cli.console import stderr

PLAIN_INTERVAL_S = 30.0
Item = TypeVar("Item")


def with_progress(items: Iterable[Item], total: int, description: str, console: Console = stderr,
                  interval: float = PLAIN_INTERVAL_S) -> Iterator[Item]:
    """Yield ``items`` (``total`` of them) while showing how many are done and the time left."""
    if console.is_terminal:
        columns = (TextColumn(description), BarColumn(bar_width=20), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task(description, total=total)
            for item in items:
                yield item
                progress.advance(task)
        return
    started = last_line = time.monotonic()
    for done, item in enumerate(items, start=1):
        yield item
        now = time.monotonic()
        if now - last_line >= interval and done < total:
            last_line = now
            remaining = timedelta(seconds=round((now - started) / done * (total - done)))
            console.print(f"{description}: {done}/{total} ({done / total:.0%}), ETA {remaining}", highlight=False,
                          soft_wrap=True)
