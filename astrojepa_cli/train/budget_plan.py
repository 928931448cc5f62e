"""The step count of a ``--budget`` run, measured on a throw-away copy of the model (see :mod:`.budget`),
and the precision of a run (see :mod:`.precision`): on a CPU with ``auto``, the calibration times
both precisions and the run keeps the faster."""

from __future__ import annotations

import copy
import math
import tempfile
from pathlib import Path

import torch
import torch.distributed as dist
from rich.markup import escape

from astrojepa_cli import runs
from astrojepa_cli.console import stderr
from astrojepa_cli.errors import UserError
from astrojepa_cli.train import budget, precision
from astrojepa_cli.train.build import build_optimizer
from astrojepa_cli.train.config import PretrainConfig
from astrojepa_cli.train.distributed import Placement
from astrojepa_cli.train.epoch_end import epoch_monitors
from astrojepa_cli.train.online_probe import OnlineProbe
from astrojepa_cli.train.progress import CalibrationStatus
from astrojepa_cli.train.short_run import budget_warning, too_short_message
from astrojepa_cli.train.step import forward, step_generator, update
from astrojepa_cli.train.training_data import TrainingData
from registry.objective import Objective


def plan_precision_and_budget(config: PretrainConfig, objective: Objective, data: TrainingData, probe: OnlineProbe,
                              steps_per_epoch: int, img_size: int, placement: Placement, root: Path | None,
                              recorded: dict | None) -> tuple[precision.PrecisionChoice, budget.BudgetPlan | None]:
    """The run's precision and, with ``config.budget``, its budget plan.

    ``recorded`` is a resumed run's manifest record of its choice, which it keeps. A CPU
    ``auto`` with a budget times both precisions in the calibration; without one, the
    machine's peak decides. Rank 0's choice is the one every rank follows.
    """
    if recorded:
        return precision.PrecisionChoice(**recorded), None
    choice = precision.fixed_choice(config.precision, placement.device)
    plan = None
    if config.budget:
        plan = plan_budget(config, objective, data, probe, steps_per_epoch, img_size, placement,
                           (choice.used,) if choice else ("fp32", "bf16"))
        if choice is None:
            choice = precision.choose_by_steps(config.precision, plan.seconds_per_step_by_variant)
    if choice is None:
        encoder = objective.encoder
        convolutional = any(isinstance(m, torch.nn.Conv2d) for m in encoder.modules())
        choice = precision.choose_by_peak(config.precision, convolutional and not getattr(encoder, "is_vit", False), root)
    if placement.distributed:
        shared = [choice]
        dist.broadcast_object_list(shared, src=0)
        choice = shared[0]
    if choice.fell_back and placement.is_main:
        stderr.print(f"note: {choice.reason}", soft_wrap=True, highlight=False, markup=False)
    return choice, plan


def plan_budget(config: PretrainConfig, objective: Objective, data: TrainingData, probe: OnlineProbe,
                steps_per_epoch: int, img_size: int, placement: Placement,
                precisions: tuple[str, ...]) -> budget.BudgetPlan:
    """Time training steps in each of ``precisions`` and one epoch end on a copy of ``objective``, and
    choose the steps that fit ``config.budget``.

    Every rank calibrates at once (collectives inside the objective stay matched);
    rank 0's plan is the one all of them follow.
    """
    device = placement.device
    trial = copy.deepcopy(objective)
    trial_optimizer = build_optimizer(trial, config, device)
    local_rows = torch.arange(config.batch_size // placement.world_size, device=device) % len(data.images)

    def train_step(step: int, step_precision: str) -> None:
        terms = forward(trial, data.images.batch(local_rows), step, step_generator(config.seed, step, device),
                        step_precision)
        update(terms["loss"], trial, trial_optimizer, step, steps_per_epoch)
        status.stepped()

    variants = {name: (lambda step, name=name: train_step(step, name)) for name in precisions}

    def epoch_end() -> None:
        epoch_monitors(trial, data, probe, img_size, seed=config.seed, batch_size=config.batch_size)
        state = {**{f"model.{k}": v for k, v in trial.state_dict().items()},
                 **{f"optimizer.{i}.{k}": v for i, moments in enumerate(trial_optimizer.state.values())
                    for k, v in moments.items() if torch.is_tensor(v)}}
        with tempfile.TemporaryDirectory() as scratch:
            runs.save_tensors(Path(scratch) / "state.safetensors", state)

    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    with CalibrationStatus(placement.is_main, config.budget, clock=budget.budget_clock(),
                           budget_s=math.inf if placement.distributed else budget.parse_duration(config.budget)) as status:
        try:
            plan = budget.plan_steps(budget.parse_duration(config.budget), steps_per_epoch,
                                     variants if len(variants) > 1 else variants[precisions[0]], epoch_end, synchronize)
        except UserError as too_short:
            raise UserError(too_short_message(str(too_short), config)) from None
    if placement.is_main and (warning := budget_warning(plan, config)):
        stderr.print(f"[yellow]warning:[/] {escape(warning)}", soft_wrap=True, highlight=False)
    if placement.distributed:
        shared = [plan]
        dist.broadcast_object_list(shared, src=0)
        plan = shared[0]
    return plan
