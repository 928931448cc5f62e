"""The step count of a ``--budget`` run, measured on a throw-away copy of the model (see :mod:`.budget`)."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import torch
import torch.distributed as dist

from astrojepa_cli import runs
from astrojepa_cli.train import budget
from astrojepa_cli.train.build import build_optimizer
from astrojepa_cli.train.config import PretrainConfig
from astrojepa_cli.train.distributed import Placement
from astrojepa_cli.train.epoch_end import epoch_monitors
from astrojepa_cli.train.online_probe import OnlineProbe
from astrojepa_cli.train.step import forward, step_generator, update
from astrojepa_cli.train.training_data import TrainingData
from registry.objective import Objective


def plan_budget(config: PretrainConfig, objective: Objective, data: TrainingData, probe: OnlineProbe,
                steps_per_epoch: int, img_size: int, placement: Placement) -> budget.BudgetPlan:
    """Time training steps and one epoch end on a copy of ``objective``, and choose the steps that fit
    ``config.budget``.

    Every rank calibrates at once (collectives inside the objective stay matched);
    rank 0's plan is the one all of them follow.
    """
    device = placement.device
    trial = copy.deepcopy(objective)
    trial_optimizer = build_optimizer(trial, config, device)
    local_rows = torch.arange(config.batch_size // placement.world_size, device=device) % len(data.images)

    def train_step(step: int) -> None:
        terms = forward(trial, data.images.batch(local_rows), step, step_generator(config.seed, step, device),
                        config.precision)
        update(terms["loss"], trial, trial_optimizer, step, steps_per_epoch)

    def epoch_end() -> None:
        epoch_monitors(trial.encoder, data, probe, img_size)
        state = {**{f"model.{k}": v for k, v in trial.state_dict().items()},
                 **{f"optimizer.{i}.{k}": v for i, moments in enumerate(trial_optimizer.state.values())
                    for k, v in moments.items() if torch.is_tensor(v)}}
        with tempfile.TemporaryDirectory() as scratch:
            runs.save_tensors(Path(scratch) / "state.safetensors", state)

    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    plan = budget.plan_steps(budget.parse_duration(config.budget), steps_per_epoch, train_step, epoch_end, synchronize)
    if placement.distributed:
        shared = [plan]
        dist.broadcast_object_list(shared, src=0)
        plan = shared[0]
    return plan
