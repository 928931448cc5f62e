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
import re
import statistics
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
    """What the calibration measured and the step count it chose (recorded in the run manifest).

    ``seconds_per_step_by_variant`` holds each timed variant's rate when the calibration
    compared several (e.g. ``{"fp32": …, "bf16": …}``); ``seconds_per_step`` is the fastest,
    and ``calibration_steps`` counts the steps of each variant."""

    budget_s: float
    clock: str
    calibration_s: float
    calibration_steps: int
    seconds_per_step: float
    epoch_end_s: float
    steps_per_epoch: int
    steps: int
    seconds_per_step_by_variant: dict[str, float] | None = None

    @property
    def epochs(self) -> float:
        return self.steps / self.steps_per_epoch

    def to_json(self) -> dict:
        return {**{k: v for k, v in asdict(self).items() if v is not None}, "epochs": round(self.epochs, 2)}


def plan_steps(budget_s: float, steps_per_epoch: int,
               train_step: Callable[[int], None] | dict[str, Callable[[int], None]],
               epoch_end: Callable[[], None], synchronize: Callable[[], None] = lambda: None) -> BudgetPlan:
    """Time ``train_step(i)`` and one ``epoch_end()``, then choose the steps that fit in ``budget_s``.

    ``train_step`` may be a dict of variants (e.g. one step per precision): each is warmed
    up, then their timed steps alternate, so a shared machine's drift hits all alike, and
    the plan follows the variant with the smallest median. ``synchronize`` waits for
    queued device work (CUDA is asynchronous), so the timings are real.
    """
    variants = train_step if isinstance(train_step, dict) else {"": train_step}
    clock = budget_clock()
    started = clock()
    for step in range(WARMUP_STEPS):
        for run in variants.values():
            run(step)
    synchronize()
    times: dict[str, list[float]] = {name: [] for name in variants}
    # Up to CALIBRATION_STEPS timed rounds, fewer once calibration has used its share of a short budget.
    while len(times[next(iter(variants))]) < CALIBRATION_STEPS:
        for name, run in variants.items():
            tick = clock()
            run(WARMUP_STEPS + len(times[name]))
            synchronize()
            times[name].append(clock() - tick)
        if clock() - started >= CALIBRATION_SHARE * budget_s:
            break
    medians = {name: statistics.median(values) for name, values in times.items()}
    seconds_per_step = min(medians.values())
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
    calibration_steps = WARMUP_STEPS + len(times[next(iter(variants))])  # per variant
    return BudgetPlan(budget_s, os.environ.get(CLOCK_VARIABLE, "wall"), calibration_s, calibration_steps, seconds_per_step,
                      epoch_end_s, steps_per_epoch, steps, medians if len(variants) > 1 else None)


def machine() -> dict:
    """The machine a timing was taken on: CPU model, cores, torch threads, and the matrix instructions
    (AVX-512, AVX512_BF16, AMX) that set its fp32 and bf16 rates (timings differ by 2.5x with AVX-512 alone)."""
    import torch

    from astrojepa_cli.runs.machine import cpu_model_and_flags, matrix_features

    model, flags = cpu_model_and_flags()
    return {"cpu": model, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "avx512": "avx512f" in flags, "matrix_features": matrix_features(flags),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
