"""Honest warnings about runs that will learn little: a budget that buys less than one epoch, and
steps so slow on this machine that a run of any length is mostly waiting. Each names the step time
and a recipe that fits."""

from __future__ import annotations

from astrojepa_cli.train.budget import BudgetPlan
from astrojepa_cli.train.config import PretrainConfig

# A step slower than this (seconds) is worth a warning: a 30-minute budget then buys under 180 steps.
SLOW_STEP_S = 10.0


def recipe_hint(config: PretrainConfig) -> str:
    """What to try instead: a smaller encoder or image size, or the measured CPU recipe of the method."""
    options = []
    if config.arch.startswith("vit") and config.arch != "vit-t":
        options.append("a smaller encoder (--arch vit-t)")
    if config.img_size is None or config.img_size > 32:
        options.append("smaller images (--img-size 32)")
    preset = "lejepa-cpu" if config.loss == "lejepa" else "small-cpu"
    options.append(f"--preset {preset}")
    return "for a run that fits, try " + (", ".join(options[:-1]) + " or " if len(options) > 1 else "") + options[-1]


def budget_warning(plan: BudgetPlan, config: PretrainConfig) -> str | None:
    """One line when the budget buys less than one epoch or a calibration step took over ``SLOW_STEP_S``."""
    if plan.steps >= plan.steps_per_epoch and plan.seconds_per_step <= SLOW_STEP_S:
        return None
    return (f"--budget {config.budget} buys {plan.steps:,} steps ({plan.epochs:.2g} epoch{'s' if plan.epochs >= 2 else ''}"
            f" of {plan.steps_per_epoch:,} steps) at {plan.seconds_per_step:.3g} s per step on this machine; "
            f"{recipe_hint(config)}")


def slow_step_warning(seconds: float, steps_left: int, config: PretrainConfig) -> str | None:
    """One line when a step of a run without a budget took over ``SLOW_STEP_S``."""
    if seconds <= SLOW_STEP_S:
        return None
    hours = seconds * steps_left / 3600
    left = f"{hours:.1f} h" if hours >= 1 else f"{hours * 60:.0f} min"
    return (f"one step took {seconds:.3g} s on this machine, so the {steps_left:,} steps left need about {left}; "
            f"{recipe_hint(config)}")


def too_short_message(message: str, config: PretrainConfig) -> str:
    """A budget too short for even one step: the calibration's reason, then a recipe that fits."""
    return f"{message}; {recipe_hint(config)}"
