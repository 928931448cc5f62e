r"""Wall-clock budgets: ``pretrain --budget 30m`` sets the step count so the schedule ends on time.

The plan is measured, not guessed: a few training steps on a throw-away copy of
the model give the seconds per step on this machine, one pass of the epoch-end
work (collapse monitors, online probe, checkpoint) gives its cost, and the steps
that fit are

.. math:: S = \left\lfloor \frac{B - t_{cal}}{t_{step} + t_{epoch} / S_{epoch}} \right\rfloor

with :math:`B` the budget, :math:`t_{cal}` the time the calibration itself took,
and :math:`S_{epoch}` the steps per epoch. The same recipe therefore trains fewer
steps on a slow laptop and more on a fast one, and both end on time.

Benchmarks on a shared machine set ``ASTROJEPA_BUDGET_CLOCK=cpu``: the calibration
then counts this process's CPU time divided by its torch threads, which other
jobs on the cores do not inflate, so recipes get equal compute whatever else runs.
"""

from __future__ import annotations

import os
import platform
import re
import time
from dataclasses import asdict, dataclass
from typing import Callable

from astrojepa_cli.errors import UserError

CALIBRATION_STEPS = 6
# The share of the budget that calibration may spend before it stops timing more steps.
CALIBRATION_SHARE = 0.2
# The first steps pay for allocation and oneDNN/cuDNN kernel selection; they are timed apart.
WARMUP_STEPS = 2
_UNIT_SECONDS = {"h": 3600, "m": 60, "s": 1}
CLOCK_VARIABLE = "ASTROJEPA_BUDGET_CLOCK"


def budget_clock() -> Callable[[], float]:
    """Wall-clock seconds, or with ``ASTROJEPA_BUDGET_CLOCK=cpu`` process CPU seconds per torch thread."""
    import torch

    choice = os.environ.get(CLOCK_VARIABLE, "wall")
    if choice == "wall":
        return time.perf_counter
    if choice == "cpu":
        return lambda: time.process_time() / torch.get_num_threads()
    raise UserError(f"{CLOCK_VARIABLE} must be 'wall' or 'cpu', got '{choice}'")


def parse_duration(text: str) -> float:
    """Seconds in ``"30m"``, ``"1h30m"``, ``"90s"`` or ``"45"`` (seconds); a clear error otherwise."""
    cleaned = str(text).strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", cleaned):
        seconds = float(cleaned)
    else:
        parts = re.findall(r"(\d+(?:\.\d+)?)([hms])", cleaned)
        if not parts or "".join(a + b for a, b in parts) != cleaned:
            raise UserError(f"--budget takes a duration such as 30m, 1h30m or 90s (got '{text}')")
        seconds = sum(float(amount) * _UNIT_SECONDS[unit] for amount, unit in parts)
    if seconds <= 0:
        raise UserError(f"--budget must be positive (got '{text}')")
    return seconds


@dataclass
class BudgetPlan:
    """What the calibration measured and the step count it chose (recorded in the run manifest)."""

    budget_s: float
    clock: str
    calibration_s: float
    calibration_steps: int
    seconds_per_step: float
    epoch_end_s: float
    steps_per_epoch: int
    steps: int

    @property
    def epochs(self) -> float:
        return self.steps / self.steps_per_epoch

    def to_json(self) -> dict:
        return {**asdict(self), "epochs": round(self.epochs, 2)}


def plan_steps(budget_s: float, steps_per_epoch: int, train_step: Callable[[int], None],
               epoch_end: Callable[[], None], synchronize: Callable[[], None] = lambda: None) -> BudgetPlan:
    """Time ``train_step(i)`` and one ``epoch_end()``, then choose the steps that fit in ``budget_s``.

    ``synchronize`` waits for queued device work (CUDA is asynchronous), so the timings are real.
    """
    clock = budget_clock()
    started = clock()
    for step in range(WARMUP_STEPS):
        train_step(step)
    synchronize()
    tick = clock()
    timed = 0
    # Up to CALIBRATION_STEPS timed steps, fewer once calibration has used its share of a short budget.
    while timed < CALIBRATION_STEPS:
        train_step(WARMUP_STEPS + timed)
        synchronize()
        timed += 1
        if clock() - started >= CALIBRATION_SHARE * budget_s:
            break
    seconds_per_step = (clock() - tick) / timed
    tick = clock()
    epoch_end()
    synchronize()
    epoch_end_s = clock() - tick
    calibration_s = clock() - started
    per_step = seconds_per_step + epoch_end_s / steps_per_epoch
    steps = int((budget_s - calibration_s) / per_step)
    if steps < 1:
        raise UserError(f"a budget of {budget_s:.0f} s is too short: calibration alone took {calibration_s:.0f} s "
                        f"and one step takes {per_step:.2f} s")
    return BudgetPlan(budget_s, os.environ.get(CLOCK_VARIABLE, "wall"), calibration_s, WARMUP_STEPS + timed, seconds_per_step, epoch_end_s,
                      steps_per_epoch, steps)


def machine() -> dict:
    """The machine a timing was taken on: CPU model, cores, torch threads and AVX-512 (timings differ by 2.5x)."""
    import torch

    model, flags = "", ""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name") and not model:
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = line
                    break
    except OSError:
        pass
    return {"cpu": model or platform.processor() or platform.machine(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "avx512": "avx512f" in flags.split(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
