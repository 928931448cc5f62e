"""Live dashboards of a run (``pretrain --log``): TensorBoard, MLflow and W&B receive every row of
``metrics.jsonl``, the run's config, and each epoch's summary (collapse monitors, online probe).

Each tracker is an optional extra and runs on a thread of its own (:mod:`.background`). One that
cannot start (its extra missing, its server unreachable) or that fails later costs one
``warning:`` line and is dropped for the rest of the run: a dashboard never stops training.
Only rank 0 opens trackers; the others get none.
"""

from __future__ import annotations

import importlib
import logging
import math
from typing import TYPE_CHECKING, Callable

from astrojepa_cli.errors import UserError
from astrojepa_cli.train.tracking.background import Tracker, TrackerThread

if TYPE_CHECKING:  # the config imports this module, and must not load torch (which runs does)
    from astrojepa_cli import runs

TRACKERS = ("tensorboard", "mlflow", "wandb")
# Given to --log on resume, it stops the trackers the run was logging to.
NO_TRACKER = "none"
_MODULES = {"tensorboard": "tensorboard_tracker", "mlflow": "mlflow_tracker", "wandb": "wandb_tracker"}
# How long the end of a run waits for a tracker to send what it still holds.
CLOSE_SECONDS = 60

log = logging.getLogger("astrojepa")


def check_tracker_names(names: tuple[str, ...]) -> None:
    """``--log`` takes the names in :data:`TRACKERS` (or :data:`NO_TRACKER`)."""
    unknown = [name for name in names if name not in (*TRACKERS, NO_TRACKER)]
    if unknown:
        raise UserError(f"--log {unknown[0]}: unknown tracker; choose from {', '.join(TRACKERS)} "
                        f"(or {NO_TRACKER} on --resume, to stop logging)")


class Trackers:
    """The run's trackers. One that failed is dropped, with its one warning line, at the next call or at the end."""

    def __init__(self, threads: dict[str, TrackerThread]) -> None:
        self.threads = threads

    def log_row(self, row: dict) -> None:
        """A row of ``metrics.jsonl``, under the same names, at its step."""
        values = scalars(row, skip=("step",))
        self._each("log", lambda tracker: tracker.log(row["step"], values))

    def log_epoch(self, summary: dict) -> None:
        """An epoch summary (the run manifest's ``epochs`` entry) as ``epoch/<name>`` at the epoch's last step."""
        values = {f"epoch/{name}": value for name, value in scalars(summary, skip=("step", "epoch")).items()}
        self._each("log", lambda tracker: tracker.log(summary["step"], values))

    def close(self, status: str) -> None:
        """End every tracker's run with the run's ``status`` (completed, interrupted, failed), waiting
        up to :data:`CLOSE_SECONDS` for what each still has to send."""
        self._each("close", lambda tracker: tracker.close(status))
        for name, thread in self.threads.items():
            if not thread.finish(CLOSE_SECONDS):
                log.warning(f"--log {name}: still sending after {CLOSE_SECONDS} s; its last values may be missing")
            elif thread.failure:
                log.warning(f"{thread.failure}; training went on without it")
        self.threads = {}

    def __enter__(self) -> "Trackers":
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if kind is not None:
            self.close("interrupted" if issubclass(kind, KeyboardInterrupt) else "failed")

    def _each(self, doing: str, call: Callable[[Tracker], None]) -> None:
        for name, thread in list(self.threads.items()):
            if thread.failure:
                del self.threads[name]
                thread.finish(0)
                log.warning(f"{thread.failure}; training goes on without it")
            else:
                thread.submit(doing, call)


def open_trackers(names: tuple[str, ...], run: runs.Run, config: dict, start_step: int, is_main: bool) -> Trackers:
    """Start the trackers ``names`` for ``run`` (recorded ``config``; resuming at ``start_step``), on rank 0 only."""
    def opener(name: str) -> Callable[[], Tracker]:
        return lambda: importlib.import_module(f"{__name__}.{_MODULES[name]}").open(run, config, start_step)

    chosen = [name for name in dict.fromkeys(names) if name != NO_TRACKER] if is_main else []
    return Trackers({name: TrackerThread(name, opener(name)) for name in chosen})


def scalars(record: dict, skip: tuple[str, ...] = ()) -> dict[str, float]:
    """The finite numbers of ``record`` (booleans, text, None, NaN and nested values left out)."""
    return {name: float(value) for name, value in record.items()
            if name not in skip and isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value)}


def flat_config(config: dict) -> dict[str, str]:
    """The config as text values (a tuple reads as ``a,b``; None as ``none``), as dashboards' parameters take it."""
    def text(value) -> str:
        if isinstance(value, (list, tuple)):
            return ",".join(text(item) for item in value)
        return "none" if value is None else str(value)

    return {name: text(value) for name, value in config.items()}
