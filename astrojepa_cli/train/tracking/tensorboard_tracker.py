"""TensorBoard: event files in the run folder itself, so that ``tensorboard --logdir RUNS_FOLDER``
names each run by its id."""

from __future__ import annotations

import json

from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard extra

from astrojepa_cli import runs


class TensorBoardTracker:
    def __init__(self, writer: SummaryWriter) -> None:
        self.writer = writer

    def log(self, step: int, values: dict[str, float]) -> None:
        for name, value in values.items():
            self.writer.add_scalar(name, value, step)
        # On disk at once: the dashboard follows the run live, and a killed run loses no logged step.
        self.writer.flush()

    def close(self, status: str) -> None:
        self.writer.add_text("status", status)
        self.writer.close()


def open(run: runs.Run, config: dict, start_step: int) -> TensorBoardTracker:
    """A writer into ``run``'s folder. On resume, events after ``start_step`` (the steps the
    resumed run replays) are purged, as the run's own metrics are."""
    writer = SummaryWriter(str(run.dir), purge_step=start_step + 1 if start_step else None)
    writer.add_text("config", "```\n" + json.dumps(config, indent=2) + "\n```", start_step)
    return TensorBoardTracker(writer)
