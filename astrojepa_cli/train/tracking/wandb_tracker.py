"""Weights & Biases: offline by default, into ``RUN_DIR/wandb/`` (``wandb sync`` uploads it later).

``WANDB_MODE=online`` (after ``wandb login``) streams instead; ``WANDB_PROJECT`` names the project
(default ``astrojepa``). The W&B run's id is the astrojepa run's id.
"""

from __future__ import annotations

import os

import wandb  # needs the wandb extra

from astrojepa_cli import runs

EXIT_CODES = {"completed": 0, "interrupted": 130, "failed": 1}


class WandbTracker:
    def __init__(self, run) -> None:
        self.run = run

    def log(self, step: int, values: dict[str, float]) -> None:
        self.run.log(values, step=step)

    def close(self, status: str) -> None:
        self.run.finish(exit_code=EXIT_CODES.get(status, 1))


def open(run: runs.Run, config: dict, start_step: int) -> WandbTracker:
    mode = os.environ.get("WANDB_MODE", "offline")
    settings = wandb.Settings(silent=True, console="off")  # stdout carries --json; the progress bar owns stderr
    return WandbTracker(wandb.init(
        project=os.environ.get("WANDB_PROJECT", "astrojepa"), dir=str(run.dir), id=run.id, name=run.id,
        config=config, mode=mode, resume=None if mode == "offline" else "allow", settings=settings,
    ))
